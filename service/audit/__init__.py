"""The audit trail: an append-only, hash-chained event log."""
