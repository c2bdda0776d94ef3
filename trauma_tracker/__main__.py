from trauma_tracker.cli import main

main()
