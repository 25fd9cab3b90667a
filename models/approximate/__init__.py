"""Approximate unlearning for models not trained the S3T way: model families with their own
training recipes, unlearning methods that only change the loss, and the evidence that
measures how well a method forgot (and what it cost)."""
