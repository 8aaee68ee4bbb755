"""Inbound provider webhooks: signature verification and payload parsing (no I/O)."""
