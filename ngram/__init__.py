"""An n-gram language model stored as a nested-dict trie.

    >>> from ngram import NgramModel, save_model, load_model
    >>> model = NgramModel.build("corpora/", order=5)        # held-out 5% excluded
    >>> [c.token for c in model.predict("It was a dark and stormy", k=3).candidates]
    >>> model.score(model.heldout_text(), smoothing="kn").per_token    # a corpora.units.Score
    >>> save_model(model, "books.ngram"); model = load_model("books.ngram")   # memory-mapped arrays
    >>> gpt2 = NgramModel.build("corpora/", tokens="gpt2")  # GPT-2's BPE tokens, as the transformer sees them
    >>> gpt2.token_logprobs(next(gpt2.tokenizer.sentences("It was a dark and stormy night")))
    >>> export_arpa(model, "books.arpa")                     # KenLM, SRILM and Kaldi read it
    >>> kenlm = import_arpa("kenlm.arpa", get_tokenizer("words"))   # e.g. one made by lmplz
    >>> export_trie_json(model, "want.json", context="I want", depth=2)   # the nested object, for a browser
"""
from corpora.tokenizers import BPETokens, CharTokenizer, Tokenizer, WordTokenizer, get_tokenizer
from corpora.units import Score

from .backoff import ArpaBackoff, import_arpa
from .export import export_arpa, export_trie_json
from .io import default_model_path, load_model, save_model
from .kneser_ney_reference import kneser_ney_prob
from .model import NgramModel
from .phrases import Phrase
from .predict import Candidate, Prediction
from .smoothing import AddK, Counts, KneserNey, MLE, StupidBackoff, get_smoothing

__all__ = [
    "AddK",
    "ArpaBackoff",
    "BPETokens",
    "Candidate",
    "CharTokenizer",
    "Counts",
    "KneserNey",
    "MLE",
    "NgramModel",
    "Phrase",
    "Prediction",
    "Score",
    "StupidBackoff",
    "Tokenizer",
    "WordTokenizer",
    "default_model_path",
    "export_arpa",
    "export_trie_json",
    "get_smoothing",
    "get_tokenizer",
    "import_arpa",
    "kneser_ney_prob",
    "load_model",
    "save_model",
]
