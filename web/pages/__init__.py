"""The pages: one blueprint per area (me, team, people, alerts, health)."""
