"""The exact model kind: S3T models (shards, slices, one LoRA layer group per slice)."""
