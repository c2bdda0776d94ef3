"""Delivery: the outbox into messages, sent through the channels."""
