"""The n-gram model: the trie, the fast builder, smoothing, predictions, scoring and the split."""
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora import Corpus, Document, load_corpus
from ngram import NgramModel, load_model, save_model
from ngram import counting, trie
from corpora.tokenizers import BOS, EOS, UNK
from ngram.smoothing import kn_discounts

TINY = """I want to be a doctor. I want to know the truth. You want to be free.

The cat sat on the mat. The dog sat on the log. The cat saw the dog.
"""


def tiny_model(order: int = 3, min_count: int = 1, text: str = TINY) -> NgramModel:
    corpus = Corpus([Document("tiny.txt", text)], heldout_fraction=0.0)
    return NgramModel.build(corpus, order=order, min_count=min_count, progress=False)


@pytest.fixture(scope="module")
def books_model(shared_dir: Path) -> NgramModel:
    """A 4-gram model of three shared books (about 250k tokens), held-out 5% excluded."""
    books = shared_dir / "corpora" / "books"
    names = ["alice_in_wonderland.txt", "a_christmas_carol.txt", "the_call_of_the_wild.txt"]
    corpus = Corpus([load_corpus(books / n).documents[0] for n in names], 0.05, location=str(books))
    return NgramModel.build(corpus, order=4, progress=False)


# ------------------------------------------------------------------ the trie itself
def test_trie_is_a_nested_dict_of_counts():
    model = tiny_model(order=4)
    node = model.root["I"]["want"]["to"]
    assert node[trie.COUNT] == 2
    assert node["be"] == 1 and node["know"] == 1  # the deepest level stores bare counts
    assert model.root["want"]["to"][trie.COUNT] == 3
    assert model.root["want"]["to"][trie.CONTINUATION] == 2  # preceded by "I" and "You"


def brute_force_counts(sentences: list[list[str]], order: int) -> tuple[Counter, dict]:
    counts: Counter = Counter()
    left: dict = {}
    for s in sentences:
        for k in range(1, order + 1):
            for i in range(len(s) - k + 1):
                gram = tuple(s[i:i + k])
                counts[gram] += 1
                if i > 0 and k < order:
                    left.setdefault(gram, set()).add(s[i - 1])
    return counts, left


sentences_strategy = st.lists(
    st.lists(st.sampled_from(["a", "b", "c", "count", "null", "#", "\u00e9t\u00e9"]), min_size=1, max_size=9),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(sentences_strategy, st.integers(min_value=1, max_value=5))
def test_fast_builder_equals_reference_and_brute_force(sentences, order):
    wrapped = [[BOS, *s, EOS] for s in sentences]
    reference = trie.new_root()
    for s in wrapped:
        trie.insert_sentence(reference, s, order)
    vocab = [UNK, BOS, EOS, *sorted({t for s in sentences for t in s})]
    index = {t: i for i, t in enumerate(vocab)}
    fast, statistics = counting.build_trie([[index[t] for t in s] for s in wrapped], vocab, order, index[BOS])
    assert fast == reference
    assert statistics == trie.count_statistics(reference, order)
    counts, left = brute_force_counts(wrapped, order)
    for gram, c in counts.items():
        node = trie.find(fast, gram)
        assert trie.count_of(node) == c
        if len(gram) < order:
            assert trie.continuation_of(node) == len(left.get(gram, ()))
    assert sum(statistics["ngrams"]) == len(counts)


def test_reserved_keys_never_collide_and_round_trip(tmp_path):
    text = 'The count was null. A count # of null words: "count" and null! # # count.\n'
    model = tiny_model(order=3, text=text)
    assert model.root["count"][trie.COUNT] == 4
    assert model.root["null"][trie.COUNT] == 3
    assert model.root["#"]["#"][trie.COUNT] == 1
    path = save_model(model, tmp_path / "m.json.gz")
    again = load_model(path)
    assert again.root == model.root and again.vocab == model.vocab
    before = model.predict("A count", k=5)
    after = again.predict("A count", k=5)
    assert [(c.token, c.count, c.probability) for c in before.candidates] == [
        (c.token, c.count, c.probability) for c in after.candidates
    ]


def test_char_tokens_round_trip_including_space_and_hash(tmp_path):
    corpus = Corpus([Document("c.txt", "a # b\x00 c  count\n")], 0.0)
    model = NgramModel.build(corpus, order=3, tokens="chars", min_count=1, progress=False)
    assert model.root[" "]["#"][trie.COUNT] == 1
    again = load_model(save_model(model, tmp_path / "c.json.gz"))
    assert again.root == model.root and again.tokenizer.name == "chars"


# --------------------------------------------------------------------- smoothing
def test_kneser_ney_and_add_k_sum_to_one_on_many_random_contexts(books_model):
    rng = random.Random(7)
    kn, addk = books_model.smoothing("kn"), books_model.smoothing("addk", k=0.5)
    words = books_model.vocab[3:3000]
    sentences = [s for s in books_model.tokenizer.sentences(books_model.heldout_text())][:200]
    contexts = [[BOS]] + [[BOS, *rng.sample(words, rng.randint(1, 4))] for _ in range(100)]
    contexts += [[BOS, *books_model.to_vocab(s)][: rng.randint(1, len(s) + 1)] for s in sentences[:100]]
    contexts += [[UNK, UNK, UNK], ["the", UNK], [EOS], []]
    for context in contexts:
        p = kn.distribution(context)
        assert p.min() > 0
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert addk.distribution(context).sum() == pytest.approx(1.0, abs=1e-9)
        for token in rng.sample(books_model.counts.predictable, 5) + ["the", UNK, EOS]:
            i = books_model.counts.index[token]
            assert kn.prob(context, token) == pytest.approx(p[i], rel=1e-9)


def test_kneser_ney_matches_a_hand_computed_unigram():
    model = tiny_model(order=2)
    # Unigram level of a bigram-trained model uses continuation counts: "sat" follows
    # "cat" and "dog" -> 2 distinct left neighbours.
    cont = trie.continuation_of(model.root["sat"])
    assert cont == 2
    # Continuation counts of the unigrams: n1..n4 = 16, 3, 1, 0. n4 = 0, so every
    # discount is the fallback Y = n1 / (n1 + 2 n2) = 16 / 22 = 8/11.
    assert model.statistics["cont1"] == [16, 3, 1, 0]
    d = 8 / 11
    kn2 = model.smoothing("kn")
    assert kn2.discounts[1] == pytest.approx((d, d, d), rel=1e-12)
    total = model.root[trie.CONTINUATION]
    children = [trie.continuation_of(c) for t, c in trie.children(model.root) if t != BOS]
    assert sum(children) == total == 31  # 31 distinct bigrams, none ending in <s>
    gamma = d * sum(1 for c in children if c > 0) / total
    expected = (cont - d) / total + gamma / len(model.counts.predictable)
    assert kn2.prob([], "sat") == pytest.approx(expected, rel=1e-12)
    # As a unigram model of its own, the top order reads raw counts: n1..n4 = 9, 6, 3, 1,
    # Y = 9/21 = 3/7, D1 = 1 - 2Y·6/9 = 3/7, D2 = 2 - 3Y·3/6 = 19/14, D3+ = 3 - 4Y·1/3 = 17/7.
    kn = model.smoothing("kn", order=1)
    assert kn.order == 1
    assert kn.discounts[1] == pytest.approx((3 / 7, 19 / 14, 17 / 7), rel=1e-12)


def test_discounts_follow_chen_and_goodman():
    n1, n2, n3, n4 = 1000, 400, 200, 120
    y = n1 / (n1 + 2 * n2)
    assert kn_discounts([n1, n2, n3, n4]) == pytest.approx(
        (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    )
    d = kn_discounts([10, 4, 0, 0])  # too little data: plain absolute discounting, D = Y
    assert d == pytest.approx((10 / 18,) * 3)
    assert all(0 < x <= 1 for x in kn_discounts([0, 0, 0, 0]))


def test_mle_and_stupid_backoff():
    model = tiny_model(order=3)
    mle = model.smoothing("mle")
    assert mle.prob([BOS, "I", "want"], "to") == 1.0
    assert mle.prob(["want", "to"], "be") == pytest.approx(2 / 3)
    assert mle.prob(["want", "to"], "cat") == 0.0
    backoff = model.smoothing("backoff")
    assert not backoff.normalised
    assert backoff.prob(["want", "to"], "know") == pytest.approx(1 / 3)
    # "to the" never occurs: back off twice, to the unigram relative frequency
    # (relative to every token that can come next, so <s> is not counted)
    # 46 such tokens (40 words and full stops, 6 </s>), 4 of them "the", 2 "sat"
    assert model.root[trie.COUNT] - model.root[BOS][trie.COUNT] == 46
    assert backoff.prob(["want", "to"], "the") == pytest.approx(0.4 * 0.4 * 4 / 46)
    assert backoff.prob(["want", "to"], "sat") == pytest.approx(0.4 * 0.4 * 2 / 46)
    assert backoff.prob(["want", "to"], "be") == pytest.approx(2 / 3)


# ---------------------------------------------------------- prediction and text
def test_predict_uses_longest_context_and_backs_off():
    model = tiny_model(order=4)
    p = model.predict("I want to", k=3)
    assert p.matched_context == ["I", "want", "to"]
    assert p.matched_order == 4
    assert {c.token for c in p.candidates[:2]} == {"be", "know"}
    assert all(c.order == 4 for c in p.candidates[:2])
    assert p.candidates[2].order < 4  # filled in from a shorter context
    unseen = model.predict("Zebras want to", k=2)
    assert unseen.matched_context == ["want", "to"]
    assert any("backed off" in note for note in unseen.notes)


def test_predict_only_unknown_words_falls_back_to_unigrams():
    model = tiny_model(order=3)
    p = model.predict("Xylophone zebra", k=3)
    assert p.matched_order == 1 and p.matched_context == []
    assert "unigrams" in p.notes[0]
    counts = [c.count for c in p.candidates]
    assert counts == sorted(counts, reverse=True)
    most = max(trie.count_of(c) for t, c in trie.children(model.root) if t != BOS)
    assert counts[0] == most == 6  # 6 sentences, 6 full stops
    assert [c.token for c in p.candidates[:2]] == [".", "the"]  # </s> (also 6) is not a word: never offered
    assert p.end_of_sentence == pytest.approx(model.smoothing("kn").prob([], EOS))


def test_predict_gives_an_example_sentence_from_the_building_text(books_model):
    p = books_model.predict("Alice was beginning to get very", k=3, example=True)
    assert p.candidates[0].token == "tired"
    assert "Alice was beginning to get very tired" in p.example


@pytest.mark.parametrize("lowercase", [False, True])
def test_the_fast_phrase_pattern_finds_what_the_readable_one_finds(shared_dir: Path, lowercase):
    """The look-behind moved after the first word, and the substring test that skips texts
    (`phrase_words`), change no match: phrases from the text, unknown words, words inside
    other words, italics underscores, the first and last word of the text."""
    from corpora.tokenizers import get_tokenizer

    tokenizer = get_tokenizer("words", lowercase)
    text = (shared_dir / "corpora" / "books" / "a_christmas_carol.txt").read_text(encoding="utf-8")[:60_000]
    text = "Marley was dead: to _begin_ with. " + text + " the end"
    words = tokenizer.tokens(text[:20_000])
    rng = random.Random(4)
    phrases = [words[i: i + rng.randint(1, 4)] for i in rng.sample(range(len(words) - 4), 150)]
    phrases += [["Marley"], ["to", "begin"], ["end"], ["the", "end"], ["arle"], ["ead"], [UNK, "was"], ["was", UNK],
                [UNK], ["MARLEY", "WAS"], ["Scrooge", "!"], [",", "and"]]
    found_some = 0
    for tokens in phrases:
        fast, plain = tokenizer.phrase_pattern(tokens), tokenizer.plain_phrase_pattern(tokens)
        spans = [m.span() for m in plain.finditer(text)]
        assert [m.span() for m in fast.finditer(text)] == spans, tokens
        if spans:
            found_some += 1
            assert all(word in text for word in tokenizer.phrase_words(tokens)), tokens
    assert found_some > 100


def test_complete_ranks_phrases_by_joint_probability():
    model = tiny_model(order=3)
    phrases = model.complete("The cat", length=2, k=3)
    assert phrases[0].probability >= phrases[1].probability >= phrases[2].probability
    assert [p.tokens for p in phrases] == [["sat", "on"], ["saw", "the"], ["saw", "."]]  # no phrase holds </s>
    kn = model.smoothing("kn")
    first = phrases[0].tokens
    joint = kn.prob([BOS, "The", "cat"], first[0]) * kn.prob([BOS, "The", "cat", first[0]], first[1])
    assert phrases[0].probability == pytest.approx(joint)


def test_generate_is_reproducible_with_a_seed_and_greedy_is_deterministic():
    model = tiny_model(order=3)
    a = model.generate("The cat", max_tokens=12, seed=3)
    b = model.generate("The cat", max_tokens=12, seed=3)
    assert a == b and len(a) == 12
    greedy = model.generate("I want to", max_tokens=3, greedy=True)
    assert greedy[0] == "be"  # "be" (2 of 3) beats "know"
    assert UNK not in model.generate("The", max_tokens=50, seed=1)


# ------------------------------------------------------------ scoring and split
def test_heldout_perplexity_kneser_ney_beats_add_k_and_mle(books_model):
    text = books_model.heldout_text()
    kn = books_model.score(text, "kn")
    addk = books_model.score(text, "addk")
    mle = books_model.score(text, "mle")
    assert math.isfinite(kn.per_token) and kn.zero_prob == 0
    assert kn.per_token < addk.per_token
    assert mle.zero_prob > 0 and math.isinf(mle.per_token)
    assert kn.per_token < mle.per_token_nonzero * 100  # sanity: same ballpark, finite
    assert mle.to_dict()["per_token"] is None  # no "inf" in JSON
    assert kn.tokens == addk.tokens == mle.tokens and kn.oov > 0
    assert kn.units.bytes == len(text.encode("utf-8")) and kn.units.words == len(text.split())
    assert kn.setting == {"smoothing": "kn", "order": 4, "sentences": len(list(books_model.tokenizer.sentences(text)))}
    assert kn.per_token == math.exp(kn.nll / kn.tokens) and kn.token_kind == "words"


def test_lower_orders_score_from_the_same_trie(books_model):
    text = books_model.heldout_text()[:20000]
    ppl = [books_model.score(text, "kn", order=k).per_token for k in (1, 2, 3, 4)]
    assert ppl[0] > ppl[1] > ppl[2]


def test_stupid_backoff_has_no_perplexity():
    from corpora import UserError

    with pytest.raises(UserError, match="not a probability"):
        tiny_model().score("The cat sat.", "backoff")


def test_split_never_leaks_heldout_text_into_the_model():
    train = "The sun rose over the hills. " * 40
    heldout_marker = "\nQuixotic zephyrs bewilder jubilant vexillologists.\n"
    text = train + heldout_marker
    corpus = Corpus([Document("d.txt", text)], heldout_fraction=0.05)
    cut = corpus.split_offsets()[0]
    assert text[cut:].strip() == heldout_marker.strip()
    model = NgramModel.build(corpus, order=3, min_count=1, progress=False)
    for word in ("Quixotic", "zephyrs", "vexillologists"):
        assert word not in model.vocab
        assert word not in model.root
    assert model.corpus["documents"][0]["split_at"] == cut
    assert model.corpus["heldout_fraction"] == 0.05
    assert "Quixotic" in corpus.heldout_text() and "Quixotic" not in corpus.train_text()


def test_no_document_leaks_its_heldout_tail_into_the_model(tmp_path):
    """Four documents, each with a marker word that appears only in its held-out tail."""
    markers = ["Quixotic", "Zephyrine", "Vexillum", "Jubilato"]
    for i, marker in enumerate(markers):
        body = f"The sun rose over hill {i}. The river ran past the mill.\n" * 40
        (tmp_path / f"doc{i}.txt").write_text(body + f"{marker} {marker.lower()}s wander here.\n", encoding="utf-8")
    corpus = load_corpus(tmp_path, heldout_fraction=0.05)
    model = NgramModel.build(corpus, order=3, min_count=1, progress=False)
    tokens_in_trie = {t for t in model.root if t not in trie.RESERVED}
    for marker in markers:
        for word in (marker, marker.lower() + "s"):
            assert word not in model.vocab, f"{word} (held out) leaked into the vocabulary"
            assert word not in tokens_in_trie, f"{word} (held out) leaked into the trie"
    heldout = model.heldout_text()
    assert all(marker in heldout for marker in markers), heldout
    built_from = sum(len(s) for text in corpus.train_texts() for s in model.tokenizer.sentences(text))
    assert model.info["training_tokens"] == built_from  # the training parts, and nothing more
    for entry, doc, marker in zip(model.corpus["documents"], corpus.documents, markers):
        cut = entry["split_at"]  # the recorded split puts the marker in the tail
        assert marker in doc.text[cut:] and marker not in doc.text[:cut]


def test_statistics_report_ngrams_per_order():
    model = tiny_model(order=3)
    s = model.stats()
    assert s["order"] == 3
    assert s["nodes"] == 1 + sum(s["ngrams_per_order"].values())
    assert s["ngrams_per_order"]["1"] == len([t for t in model.root if t not in trie.RESERVED])
    assert trie.trie_memory_bytes(model.trie.to_dict()) > model.trie.nbytes() > 0  # the arrays hold it in less


def test_distribution_vector_is_indexed_like_predictable():
    model = tiny_model(order=3)
    p = model.smoothing("kn").distribution([BOS, "The"])
    best = model.counts.predictable[int(np.argmax(p))]
    assert best == "cat"  # "The cat" twice, "The dog" once


def test_built_children_are_stored_most_frequent_first(books_model, tmp_path):
    """Predictions read the first k children; that relies on this order (kept by save/load)."""
    again = load_model(save_model(books_model, tmp_path / "b.json.gz"))
    for model in (books_model, again):
        checked = 0
        for depth, node in trie.walk(model.root, model.order):
            if isinstance(node, Mapping):
                counts = [trie.count_of(c) for _, c in trie.children(node)]
                assert counts == sorted(counts, reverse=True)
                checked += 1
        assert checked > 10_000
        top = [t for t, _ in model.followers(model.root["the"], 5)]
        by_count = sorted(trie.children(model.root["the"]), key=lambda tc: -trie.count_of(tc[1]))
        assert [trie.count_of(model.root["the"][t]) for t in top] == [trie.count_of(c) for _, c in by_count[:5]]


def test_mle_uses_the_whole_of_a_context_shorter_than_its_order():
    model = tiny_model(order=4)
    # "the dog" is always followed by "." (1 of 1); "dog" alone by "sat" or "." (1 of 2 each)
    assert model.smoothing("mle").prob(["the", "dog"], ".") == 1.0


def test_stupid_backoff_distribution_is_its_prob(books_model):
    """Every entry of the score vector is what prob gives, unseen longer contexts included."""
    method = books_model.smoothing("backoff")
    rng = random.Random(3)
    words = [w for w in books_model.vocab if w not in ("<s>",)]
    contexts = [["<s>", "Hello", "zzyzx"], ["<s>"], ["the", "old", "man"], ["<s>", "It", "was", "a"]]
    contexts += [["<s>", *rng.sample(words, rng.randint(1, 4))] for _ in range(20)]
    for context in contexts:
        scores = method.distribution(books_model.to_vocab(context))
        for token in rng.sample(words, 25) + ["the", ".", ","]:
            assert scores[method.counts.index[token]] == pytest.approx(method.prob(books_model.to_vocab(context), token), rel=1e-12)
