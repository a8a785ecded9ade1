"""GPT-2 small in plain NumPy: load the weights, generate, score, and look inside.

    >>> from transformer import load_model, generate, Sampling
    >>> model, tokenizer = load_model("gpt2")            # or a local folder
    >>> ids = tokenizer.encode("It was a dark and stormy")
    >>> new = generate(model, ids, max_new_tokens=20, sampling=Sampling(0.8, top_k=40), seed=1)
    >>> print(tokenizer.decode(new))

The pieces, each a small module you can read:
  config      GPT2Config, the model's shape
  weights     the Hugging Face tensor names, the Conv1D question, memory-mapped safetensors
  model       gelu, layer_norm, softmax, attention, mlp, block: the one forward pass,
              the KV cache (a value: branch by calling forward twice), the Tape
  reference   the same forward pass in plain NumPy, picoGPT-sized, for reading
  sample      greedy, temperature, top-k, top-p, the generation loop
  score       log-probabilities, sliding-window perplexity (a corpora.units.Score), and
              scoring with a context cut to N tokens (short_context_logprobs)
  inspection  top next tokens, the logit lens, attention maps
  backward    each layer's backward pass (training)
  optim       AdamW, the learning-rate schedule, gradient clipping
  checkpoint  the training checkpoint and the Hugging Face export
  train       the training data and loop
(The GPT-2 byte-level BPE tokenizer is corpora.tokenizers.bpe.)
"""
from .config import GPT2Config
from .inspection import attention_maps, attention_summary, logit_lens, save_attention_png, top_next_tokens
from .model import GPT2, KVCache, gpt2_forward, load_model, load_tokenizer, new_kv_cache
from .sample import GREEDY, Sampling, generate, generate_ids, stream_text
from .score import TextScores, perplexity, score_text, short_context_logprobs, token_logprobs

__all__ = [
    "GPT2", "GPT2Config", "KVCache", "GREEDY", "Sampling", "TextScores",
    "attention_maps", "attention_summary", "generate", "generate_ids", "gpt2_forward", "load_model",
    "load_tokenizer", "logit_lens", "new_kv_cache", "perplexity", "save_attention_png",
    "score_text", "short_context_logprobs", "stream_text", "token_logprobs", "top_next_tokens",
]
