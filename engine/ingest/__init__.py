"""Ingest: force feeds read, validated, upserted by natural key; bad rows quarantined."""
