"""Learning a byte-level BPE tokenizer: the first merge, determinism, round trips, files, errors."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora.common import UserError
from corpora.tokenizers.bpe import ENDOFTEXT, BPETokenizer, bytes_to_unicode, pretokenize
from corpora.tokenizers.bpe_learn import learn_bpe
from transformer.bpe_cli import bpe

TOY = ["low low low low low lower lower newest newest newest newest newest newest widest widest widest"]


@pytest.fixture(scope="module")
def toy_tokenizer() -> BPETokenizer:
    return learn_bpe(TOY, vocab_size=270, progress=False)


def test_first_merge_is_the_most_frequent_pair(toy_tokenizer: BPETokenizer) -> None:
    # Pieces: "low" x1, " low" x4, " lower" x2, " newest" x6, " widest" x3.
    # Pairs: 'Ġ'+'n' x6 ... 'e'+'s' x9 ('es' in newest x6 and widest x3), 's'+'t' x9,
    # 'w'+'e' x8 (newest x6, lower x2).  'e'+'s' and 's'+'t' tie at 9: ties go to the
    # pair with the smaller ids, and 'e' (68) < 's' (82).
    words = Counter(pretokenize(TOY[0]))
    assert words == {"low": 1, " low": 4, " lower": 2, " newest": 6, " widest": 3}
    assert toy_tokenizer.merges[0] == ("e", "s")
    assert toy_tokenizer.merges[1] == ("es", "t")  # 'es'+'t' now 9: the new token's pairs count at once
    assert toy_tokenizer.encoder["es"] == 256 and toy_tokenizer.encoder["est"] == 257


def test_learned_layout_is_gpt2s(toy_tokenizer: BPETokenizer) -> None:
    symbols = list(bytes_to_unicode().values())
    assert [toy_tokenizer.encoder[s] for s in symbols] == list(range(256))  # ids 0..255 are the bytes
    assert toy_tokenizer.vocab_size == 270 and toy_tokenizer.eot_id == 269
    assert toy_tokenizer.special_tokens == {ENDOFTEXT: 269}
    assert len(toy_tokenizer.merges) == 13
    assert toy_tokenizer.encode(" newest") == [toy_tokenizer.encoder["Ġnewest"]]


def test_verbose_prints_readable_merges(capsys: pytest.CaptureFixture[str]) -> None:
    learn_bpe(TOY, vocab_size=260, verbose=True, progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "merge 1: 'e' + 's' -> 'es' (count 9)"
    assert lines[1] == "merge 2: 'es' + 't' -> 'est' (count 9)"
    assert len(lines) == 3


def test_learning_is_deterministic(toy_tokenizer: BPETokenizer) -> None:
    again = learn_bpe(TOY, vocab_size=270, progress=False)
    assert again.merges == toy_tokenizer.merges and again.encoder == toy_tokenizer.encoder
    # the order of the texts does not change the counts, so not the merges either
    texts = ["the cat sat", "on the mat", "the end"]
    assert learn_bpe(texts, 270, progress=False).merges == learn_bpe(texts[::-1], 270, progress=False).merges


def naive_merges(texts: list[str], n_merges: int) -> list[tuple[str, str]]:
    """The textbook algorithm, slowly: recount every pair from scratch before each merge."""
    symbols = list(bytes_to_unicode().values())
    byte_id = {byte: i for i, byte in enumerate(bytes_to_unicode())}
    counts = Counter(piece for text in texts for piece in pretokenize(text))
    words = {piece: [byte_id[b] for b in piece.encode("utf-8")] for piece in counts}
    merges = []
    for _ in range(n_merges):
        pairs: Counter[tuple[int, int]] = Counter()
        for piece, ids in words.items():
            for pair in zip(ids, ids[1:]):
                pairs[pair] += counts[piece]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))  # most frequent, then smallest ids
        merged = symbols[best[0]] + symbols[best[1]]
        new_id = symbols.index(merged) if merged in symbols else len(symbols)
        if new_id == len(symbols):
            symbols.append(merged)
        merges.append((symbols[best[0]], symbols[best[1]]))
        for piece, ids in words.items():
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            words[piece] = out
    return merges


def test_incremental_counts_match_recounting_from_scratch(shared_dir: Path) -> None:
    text = (shared_dir / "corpora" / "books" / "peter_pan.txt").read_text(encoding="utf-8")[:20_000]
    learned = learn_bpe([text], vocab_size=400, progress=False)
    assert learned.merges == naive_merges([text], len(learned.merges))


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.text(alphabet="aab bc\nxé'😀s", max_size=40), min_size=1, max_size=4))
def test_learning_any_small_text(texts: list[str]) -> None:
    possible = naive_merges(texts, 10_000)
    if not any(texts):
        return
    new_tokens = {a + b for a, b in possible}  # two pairs may spell one token: count tokens
    learned = learn_bpe(texts, vocab_size=257 + len(new_tokens), progress=False)
    assert learned.merges == possible[: len(learned.merges)]
    assert {a + b for a, b in learned.merges} == new_tokens
    for text in texts:
        assert learned.decode(learned.encode(text)) == text


@pytest.fixture(scope="module")
def book_tokenizer(shared_dir: Path) -> BPETokenizer:
    text = (shared_dir / "corpora" / "books" / "alice_in_wonderland.txt").read_text(encoding="utf-8")
    return learn_bpe([text], vocab_size=600, progress=False)


def test_learned_on_a_book(book_tokenizer: BPETokenizer) -> None:
    assert book_tokenizer.vocab_size == 600 and book_tokenizer.eot_id == 599
    assert book_tokenizer.merges[0] == ("Ġ", "t")  # as in GPT-2: " t" is English's commonest pair
    assert len(book_tokenizer.encode(" Alice")) == 1  # the heroine earns a token
    text = "Alice was beginning to get very tired of sitting by her sister on the bank."
    assert len(book_tokenizer.encode(text)) < len(text.encode("utf-8")) / 2


@settings(max_examples=150, deadline=None)
@given(text=st.text())
def test_learned_tokenizer_round_trips_any_text(book_tokenizer: BPETokenizer, text: str) -> None:
    ids = book_tokenizer.encode(text)
    assert book_tokenizer.decode(ids) == text
    assert book_tokenizer.decode_bytes(ids) == text.encode("utf-8")
    assert all(0 <= i < 599 for i in ids)  # <|endoftext|> only when asked for


def test_learned_files_load_back(book_tokenizer: BPETokenizer, tmp_path: Path) -> None:
    book_tokenizer.save(tmp_path)
    loaded = BPETokenizer.from_dir(tmp_path)
    assert loaded.encoder == book_tokenizer.encoder and loaded.merges == book_tokenizer.merges
    text = "Down the Rabbit-Hole, with ünïcödé and <|endoftext|>."
    assert loaded.encode(text) == book_tokenizer.encode(text)
    assert loaded.encode(ENDOFTEXT, allowed_special="all") == [599]


def test_too_small_vocab() -> None:
    with pytest.raises(UserError, match="at least 257"):
        learn_bpe(["some text"], vocab_size=256, progress=False)
    assert learn_bpe(["some text"], vocab_size=257, progress=False).merges == []


def test_too_large_vocab_says_how_many_merges_were_possible() -> None:
    # "abab abab": pieces "abab" and " abab"; every merge joins two tokens until each
    # piece is one token: a+b, ab+ab, Ġ+abab -> 3 merges, at most vocab size 260.
    assert len(learn_bpe(["abab abab"], vocab_size=260, progress=False).merges) == 3
    with pytest.raises(UserError, match=r"only 3 merges were possible \(at most vocab size 260\)"):
        learn_bpe(["abab abab"], vocab_size=261, progress=False)


@pytest.mark.parametrize("texts", [[], [""], ["", ""]])
def test_empty_text(texts: list[str]) -> None:
    with pytest.raises(UserError, match="no text to learn from"):
        learn_bpe(texts, vocab_size=300, progress=False)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def write_corpus(folder: Path) -> Path:
    """One document: 20 lines about a cat, then 20 lines of "zq" (23 characters a line)."""
    folder.mkdir()
    lines = ["the cat sat on the mat"] * 20 + ["zq zq zq zq zq zq zq zq"] * 20
    (folder / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_cli_learns_from_training_text_only(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    out = tmp_path / "tok"
    # Holding out 55% cuts after the 19th line: every "zq" line is held out.  Had
    # they been read, 'z' + 'q' (160 times) would be the first merge.
    args = ["learn", str(corpus), "--vocab-size", "268", "-o", str(out), "--json", "--heldout-fraction", "0.55"]
    result = CliRunner().invoke(bpe, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["vocab_size"] == 268 and summary["merges"] == 11 and summary["eot_id"] == 267
    assert summary["train_chars"] == 19 * 23
    loaded = BPETokenizer.from_dir(out)
    assert loaded.vocab_size == 268
    merged_tokens = [token for token, i in loaded.encoder.items() if 256 <= i < 267]
    assert len(merged_tokens) == 11 and not any("z" in t or "q" in t for t in merged_tokens)
    assert loaded.decode(loaded.encode("the cat sat")) == "the cat sat"
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["corpus"]["heldout_fraction"] == 0.55
    assert record["corpus"]["documents"][0]["split_at"] == 19 * 23


def test_cli_summary_and_verbose(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    result = CliRunner().invoke(bpe, ["learn", str(corpus), "-n", "260", "-o", str(tmp_path / "t"), "--verbose"])
    assert result.exit_code == 0, result.output
    assert "merge 1: " in result.output and "Learned 3 merges from 1 document " in result.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    runner = CliRunner()
    too_small = runner.invoke(bpe, ["learn", str(corpus), "-n", "100", "-o", str(tmp_path / "t")])
    assert too_small.exit_code == 1 and too_small.output.startswith("Error: --vocab-size must be at least 257")
    too_big = runner.invoke(bpe, ["learn", str(corpus), "-n", "5000", "-o", str(tmp_path / "t")])
    assert too_big.exit_code == 1 and "merges were possible" in too_big.output
    bad_fraction = runner.invoke(bpe, ["learn", str(corpus), "-n", "260", "-o", str(tmp_path / "t"), "--heldout-fraction", "1"])
    assert bad_fraction.exit_code == 1 and bad_fraction.output.startswith("Error: --heldout-fraction must be")
    assert not (tmp_path / "t").exists()  # nothing written on failure
    missing = runner.invoke(bpe, ["learn", str(tmp_path / "nowhere"), "-n", "300", "-o", str(tmp_path / "t")])
    assert missing.exit_code == 1 and "corpus folder not found" in missing.output
    (tmp_path / "file").write_text("x", encoding="utf-8")
    not_folder = runner.invoke(bpe, ["learn", str(corpus), "-n", "300", "-o", str(tmp_path / "file")])
    assert not_folder.exit_code == 1 and "is not a folder" in not_folder.output


def test_cli_help_has_an_example() -> None:
    result = CliRunner().invoke(bpe, ["learn", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "--vocab-size 4096" in result.output
