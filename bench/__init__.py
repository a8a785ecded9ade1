"""The comparison harness: both models on the same prompts and the same text."""
