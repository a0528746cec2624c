"""The governance event log: append-only, hash-chained, signed, checkpointed."""
