"""Text and how it becomes tokens: the one tokenizer layer beneath both models.

Both `ngram` and `transformer` import this package; it imports neither. It lives under
`corpora` because a tokenizer is a view of text — the same text both models are built
from and scored on — not part of either model:

- `words`: the n-gram's default word/punctuation tokenizer and the character tokenizer,
  with sentence splitting;
- `bpe`: GPT-2's byte-level BPE (encode, decode, OpenAI's and Hugging Face's file
  layouts; OpenAI's GPT-2 files ship in `gpt2/`);
- `bpe_learn`: learning a byte-level BPE from text;
- `bpe_tokens`: BPE pieces as n-gram tokens, so a trie can count the transformer's units;
- `special`: `<s>`, `</s>`, `<unk>` and `<|endoftext|>`;
- `registry`: tokenizers by the names the CLIs and saved models use.

    >>> from corpora.tokenizers import get_tokenizer, gpt2_tokenizer
    >>> get_tokenizer("words").tokens("It was a dark and stormy night.")
    ['It', 'was', 'a', 'dark', 'and', 'stormy', 'night', '.']
    >>> gpt2_tokenizer().encode("Hello world")
    [15496, 995]
"""
from .bpe import BPETokenizer, gpt2_tokenizer, pretokenize, tokenizer_fingerprint
from .bpe_learn import learn_bpe
from .bpe_tokens import BPETokens
from .registry import TOKENIZER_CHOICES, get_tokenizer, tokenizer_from_config
from .special import BOS, ENDOFTEXT, EOS, NGRAM_SPECIALS, UNK
from .words import WORD_OR_PUNCT, CharTokenizer, Tokenizer, WordTokenizer

__all__ = [
    "BOS",
    "BPETokenizer",
    "BPETokens",
    "CharTokenizer",
    "ENDOFTEXT",
    "EOS",
    "NGRAM_SPECIALS",
    "TOKENIZER_CHOICES",
    "Tokenizer",
    "UNK",
    "WORD_OR_PUNCT",
    "WordTokenizer",
    "get_tokenizer",
    "gpt2_tokenizer",
    "learn_bpe",
    "pretokenize",
    "tokenizer_fingerprint",
    "tokenizer_from_config",
]
