"""People: who they are, teams, a person's own record, and their privacy."""
