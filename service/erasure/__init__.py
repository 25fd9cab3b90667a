"""Erasure that reaches the disk: payloads sealed under per-subject data keys, and erasure as
the destruction of those keys (crypto-shredding)."""
