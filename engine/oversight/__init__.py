"""What the people who run the welfare process see: aggregates with disclosure control, the
wellbeing queue, rule effectiveness, audit search and the administrators' health figures."""
