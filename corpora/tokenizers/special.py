"""The special tokens. They are model tokens, not words of the text: never offer one as a next word.

- ``<s>`` and ``</s>``: the start and end of a sentence (of a whole text, for BPE tokens)
  in the n-gram trie;
- ``<unk>``: every word outside the n-gram's vocabulary;
- ``<|endoftext|>``: GPT-2's document separator (the last id of its vocabulary).
"""

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
ENDOFTEXT = "<|endoftext|>"

#: The n-gram's special tokens, which are never offered as a next word.
NGRAM_SPECIALS = frozenset({BOS, EOS, UNK})
