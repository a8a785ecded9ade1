"""The array trie (ngram.arrays) against the dict trie it must equal, and its files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora.common import UserError
from ngram import counting
from ngram.arrays import HEADER, ArrayNode, ArrayTrie, is_array_model, load_arrays, save_arrays
from ngram.trie import CONTINUATION, COUNT

VOCAB = ["<s>", "</s>", "I", "want", "to", "be", "know", "a", "b"]


def both_tries(sentences: list[list[int]], order: int, vocab=VOCAB) -> tuple[ArrayTrie, dict]:
    """The array trie and the dict trie of the same id sentences."""
    rows, levels = counting.count_levels(sentences, order, len(vocab))
    arrays = ArrayTrie.from_counting(rows, levels, vocab)
    reference, _ = counting.build_trie(sentences, vocab, order, bos_id=0)
    return arrays, reference


def in_order(d: dict) -> list:
    """A nested dict as nested (key, value) lists, so that key order counts in comparisons."""
    return [(k, in_order(v) if isinstance(v, dict) else v) for k, v in d.items()]


sentences_strategy = st.lists(st.lists(st.integers(2, len(VOCAB) - 1), min_size=0, max_size=12), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(sentences=sentences_strategy, order=st.integers(1, 4))
def test_array_trie_is_the_dict_trie(sentences, order):
    sentences = [[0, *s, 1] for s in sentences]
    arrays, reference = both_tries(sentences, order)
    assert in_order(arrays.to_dict()) == in_order(reference)


@settings(max_examples=80, deadline=None)
@given(sentences=sentences_strategy, order=st.integers(1, 4))
def test_arrays_read_back_from_the_dict_trie(sentences, order):
    sentences = [[0, *s, 1] for s in sentences]
    arrays, reference = both_tries(sentences, order)
    again = ArrayTrie.from_dict(reference, VOCAB, order)
    assert in_order(again.to_dict()) == in_order(reference)
    for mine, theirs in zip(again.levels, arrays.levels):
        for a, b in zip(mine.arrays().values(), theirs.arrays().values()):
            np.testing.assert_array_equal(a, b)


def test_nested_dict_face():
    # "I want to be" and "I want to know", as in the README
    sentences = [[0, 2, 3, 4, 5, 1], [0, 2, 3, 4, 6, 1]]
    arrays, reference = both_tries(sentences, 4)
    node = arrays.root["I"]["want"]["to"]
    assert isinstance(node, ArrayNode)
    assert node[COUNT] == 2 and node[CONTINUATION] == 1
    assert node["be"] == 1 and node["know"] == 1  # the deepest level holds bare counts
    assert list(node) == [COUNT, CONTINUATION, "be", "know"]
    assert len(node) == 4 and "be" in node and "was" not in node and 3 not in node
    with pytest.raises(KeyError):
        node["was"]
    assert arrays.root[COUNT] == reference[COUNT] == 12
    assert arrays.root[CONTINUATION] == reference[CONTINUATION]
    assert dict(arrays.root["I"].items()).keys() == reference["I"].keys()


def test_children_most_frequent_first_ties_by_id():
    sentences = [[0, 7, 1], [0, 8, 1], [0, 8, 1], [0, 5, 1]]  # after <s>: b twice, then a and be once
    arrays, _ = both_tries(sentences, 2)
    assert [t for t in arrays.root["<s>"] if t not in (COUNT, CONTINUATION)] == ["b", "be", "a"]


def test_find_and_child_lookup():
    sentences = [[0, 2, 3, 4, 5, 1]]
    arrays, _ = both_tries(sentences, 3)
    assert arrays.find([]) == (0, 0)
    depth, index = arrays.find(["want", "to"])
    assert depth == 2 and int(arrays.levels[1].counts[index]) == 1
    assert arrays.find(["to", "want"]) is None
    assert arrays.find(["nope"]) is None
    assert arrays.find(["I", "want", "to", "be"]) is None  # longer than the order


def test_save_and_load_round_trip(tmp_path):
    sentences = [[0, 2, 3, 4, 5, 1], [0, 2, 3, 4, 6, 1], [0, 7, 8, 7, 8, 1]]
    arrays, reference = both_tries(sentences, 3)
    folder = save_arrays(arrays, tmp_path / "model", {"note": "hello"})
    assert is_array_model(folder)
    loaded, metadata = load_arrays(folder)
    assert metadata == {"note": "hello"}
    assert isinstance(loaded.levels[0].ids.base, np.memmap)  # memory-mapped, not read
    assert in_order(loaded.to_dict()) == in_order(reference)
    assert loaded.vocab == VOCAB


def test_unicode_vocabulary_round_trips(tmp_path):
    vocab = ["<s>", "</s>", "naïve", "日本", "😀", "x"]
    arrays, reference = both_tries([[0, 2, 3, 4, 5, 1]], 2, vocab)
    loaded, _ = load_arrays(save_arrays(arrays, tmp_path / "m", {}))
    assert loaded.vocab == vocab and in_order(loaded.to_dict()) == in_order(reference)


def test_saving_over_a_model_replaces_it_and_an_interrupted_save_keeps_the_old(tmp_path, monkeypatch):
    first, _ = both_tries([[0, 2, 3, 1]], 2)
    second, second_ref = both_tries([[0, 7, 8, 7, 1]], 2)
    folder = tmp_path / "model"
    save_arrays(first, folder, {"which": 1})
    save_arrays(second, folder, {"which": 2})
    loaded, metadata = load_arrays(folder)
    assert metadata == {"which": 2} and in_order(loaded.to_dict()) == in_order(second_ref)

    calls = {"n": 0}
    real_save = np.save

    def interrupted_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        save_arrays(first, folder, {"which": 3})
    monkeypatch.undo()
    _, metadata = load_arrays(folder)
    assert metadata == {"which": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial folder left


def test_refuses_to_overwrite_a_folder_that_is_not_a_model(tmp_path):
    arrays, _ = both_tries([[0, 2, 1]], 2)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not an n-gram model folder"):
        save_arrays(arrays, tmp_path / "notes", {})
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


# ------------------------------------------------------------------ damaged files


@pytest.fixture
def saved(tmp_path):
    arrays, _ = both_tries([[0, 2, 3, 4, 5, 1], [0, 2, 3, 4, 6, 1]], 3)
    return save_arrays(arrays, tmp_path / "model", {})


def edit_header(folder, change):
    header = json.loads((folder / HEADER).read_text())
    change(header)
    (folder / HEADER).write_text(json.dumps(header))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "k2.ids.npy").unlink(), "missing"),
    (lambda f: (f / "k1.counts.npy").write_bytes((f / "k1.counts.npy").read_bytes()[:70]), "damaged|shape"),
    (lambda f: np.save(f / "k1.counts.npy", np.ones(9, dtype=np.float64)), "expected"),
    (lambda f: np.save(f / "k1.ids.npy", np.array([None] * 9, dtype=object), allow_pickle=True), "damaged|expected"),
    (lambda f: np.save(f / "k1.ids.npy", np.arange(9, dtype="<i4").reshape(3, 3)), "expected"),
    (lambda f: np.save(f / "k2.ids.npy", np.full(np.load(f / "k2.ids.npy").shape, 99, dtype="<i4")), "outside the vocabulary"),
    (lambda f: np.save(f / "k1.first_child.npy", np.load(f / "k1.first_child.npy")[::-1].copy()), "children ranges"),
    (lambda f: np.save(f / "k2.counts.npy", np.zeros_like(np.load(f / "k2.counts.npy"))), "below 1"),
    (lambda f: (f / HEADER).write_text("{not json"), "not valid JSON"),
    (lambda f: (f / HEADER).write_text("[" * 100_000), "not valid JSON"),
    (lambda f: edit_header(f, lambda h: h.update(version=99)), "version 99"),
    (lambda f: edit_header(f, lambda h: h.update(order=10**30)), "out of range"),
    (lambda f: edit_header(f, lambda h: h.update(order="3")), "non-negative integer"),
    (lambda f: edit_header(f, lambda h: h.update(vocab_size=4)), "outside the vocabulary|tokens"),
    (lambda f: edit_header(f, lambda h: h["arrays"].pop("k3.ids")), "does not match"),
    (lambda f: edit_header(f, lambda h: h.update(format="something else")), "not an n-gram model header"),
    (lambda f: (f / HEADER).unlink(), "not an n-gram model folder"),
])
def test_damaged_models_are_refused_with_one_clear_error(saved, damage, message):
    damage(saved)
    with pytest.raises(UserError, match=message):
        load_arrays(saved, verify=True)


def past_the_end(first_child: np.ndarray) -> np.ndarray:
    """Children ranges whose ends still match but whose middle points past the next level."""
    damaged = first_child.copy()
    damaged[1:-1] = first_child[-1] + 3
    return damaged


@pytest.mark.parametrize("damage, message", [
    (lambda f: np.save(f / "k2.ids.npy", np.full(np.load(f / "k2.ids.npy").shape, 99, dtype="<i4")), "outside the vocabulary"),
    (lambda f: np.save(f / "k1.first_child.npy", past_the_end(np.load(f / "k1.first_child.npy"))), "children ranges"),
])
def test_damage_inside_the_values_is_caught_when_read_without_verify(saved, damage, message):
    """Loading reads O(1) values; lookups check what they read."""
    damage(saved)
    trie, _ = load_arrays(saved)
    with pytest.raises(UserError, match=message):
        trie.to_dict()


def test_counts_are_saved_compactly(saved):
    header = json.loads((saved / HEADER).read_text())
    assert header["arrays"]["k1.counts"]["dtype"] == "<i4"
    assert header["arrays"]["k1.first_child"]["dtype"] == "<i4"


@settings(max_examples=60, deadline=None)
@given(sentences=sentences_strategy, order=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_find_many_finds_what_find_ids_finds(sentences, order, seed):
    sentences = [[0, *s, 1] for s in sentences]
    arrays, _ = both_tries(sentences, order)
    rng = np.random.default_rng(seed)
    for k in range(1, order + 1):
        grams = rng.integers(0, len(VOCAB), size=(40, k))
        seen = [s[i:i + k] for s in sentences for i in range(len(s) - k + 1)]  # n-grams that exist
        if seen:
            grams = np.vstack([grams, np.array(seen[:40])])
        expected = [(arrays.find_ids(list(g)) or (None, -1))[1] for g in grams]
        np.testing.assert_array_equal(arrays.find_many(grams), expected)
