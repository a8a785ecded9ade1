"""ARPA export: an independent back-off reader scores every token exactly as the model does."""
from __future__ import annotations

import math

import pytest

from corpora.common import UserError
from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer
from ngram import NgramModel
from ngram.arpa import read_arpa, write_arpa

TRAIN = """It was the best of times, it was the worst of times, it was the age of wisdom.
I want to be a sailor. I want to know the sea. I want to be free, and I want to see it.
The night was dark and stormy. It was a dark and stormy night; the rain fell in torrents.
She said that it was the best of all possible worlds, and he said it was not. The sea was calm.
He wanted to know the truth. They were the best of friends, and the worst of enemies."""

UNSEEN = """It was a calm night and the sea was dark. I want to know what she said.
The best of friends want to see the worlds. A sailor fell in the sea; nobody saw it."""


def mini_arpa_reader(path):
    """A dozen lines, independent of ngram.arpa: {n-gram tuple: (log10 p, log10 back-off)}."""
    table, order = {}, 0
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:line.index("-")])
        elif order and line and not line.startswith("\\"):
            fields = line.split("\t")
            words = tuple(fields[1].split(" "))
            table[words] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    return table


def backoff_log10(table, context, word):
    """Standard back-off scoring of p(word | context) from an ARPA table."""
    if context + (word,) in table:
        return table[context + (word,)][0]
    return table.get(context, (0.0, 0.0))[1] + backoff_log10(table, context[1:], word)


@pytest.fixture(scope="module")
def model_and_kn():
    tokenizer = get_tokenizer("words")
    model = NgramModel.from_sentences(list(tokenizer.sentences(TRAIN)), order=4, tokenizer=tokenizer, min_count=1)
    dict_kn = model.smoothing("kn")
    return model, dict_kn, dict_kn


def test_arpa_scores_every_token_of_an_unseen_text_as_the_model(tmp_path, model_and_kn):
    model, dict_kn, kn = model_and_kn
    path = write_arpa(kn, tmp_path / "model.arpa")
    table = mini_arpa_reader(path)
    scored = 0
    for sentence in model.tokenizer.sentences(UNSEEN):
        tokens = [BOS, *model.to_vocab(sentence), EOS]
        for i in range(1, len(tokens)):
            context = tuple(tokens[max(0, i - 3):i])
            expected = math.log10(dict_kn.prob(list(context), tokens[i]))
            assert backoff_log10(table, context, tokens[i]) == pytest.approx(expected, abs=1e-4), (context, tokens[i])
            scored += 1
    assert scored > 40 and any(t == UNK for s in model.tokenizer.sentences(UNSEEN) for t in model.to_vocab(s))


def test_arpa_header_counts_and_special_tokens(tmp_path, model_and_kn):
    model, _, kn = model_and_kn
    order, tables = read_arpa(write_arpa(kn, tmp_path / "m.arpa"))
    assert order == 4
    assert len(tables[0]) == len(model.vocab)
    assert tables[0][(BOS,)][0] == -99.0 and (UNK,) in tables[0] and (EOS,) in tables[0]
    for k in range(2, 5):
        assert len(tables[k - 1]) == len(kn.counts.trie.levels[k - 1].ids)
    # probabilities of each context's listed continuations never exceed 1 in total
    assert sum(10 ** lp for lp, _ in tables[0].values() if lp > -99) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("text, message", [
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n-0.5\n\\end\\\n", "line 6"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\nbanana\ta\n\\end\\\n", "line 5"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n", "truncated"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\ta\n-1.0\tb\n\\end\\\n", "declares 3 1-grams"),
    ("\\data\\\nngram x=3\n", "line 2"),
    ("\\data\\\nngram 1=1\n\n\\2-grams:\n-1.0\ta b\n\\end\\\n", "line 4"),
])
def test_malformed_arpa_lines_are_refused_with_their_line_number(tmp_path, text, message):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_arpa(path)
