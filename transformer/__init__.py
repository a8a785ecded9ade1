"""GPT-2 small in plain NumPy (see issue: tokenizer, weights, inference)."""
