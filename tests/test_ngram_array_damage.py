"""Damaged n-gram array folders (and training checkpoints): one `Error:` line, never a traceback.

Each case the fuzzer reported has a test here: the header (huge numbers, NaN, entries of the
wrong type), the .npy files (a damaged NumPy header), values that loading does not read
(negative counts and continuation counts, decreasing children ranges, ids out of range,
Kneser-Ney tables, an ARPA model's log10 values) — caught by `ArrayTrie.verify`, which the
commands run only when something trips (`ngram.io.diagnose_damage`) — the one order bound,
and a training checkpoint whose metadata is damaged.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpora.common import UserError
from corpora.tokenizers import get_tokenizer
from ngram import NgramModel, save_model
from ngram import io as ngram_io
from ngram.arpa import ArpaReader, read_arpa, write_arpa
from ngram.arrays import HEADER, MAX_ORDER, load_arrays
from ngram.backoff import import_arpa
from ngram.cli import main as ngram_main
from ngram.io import diagnose_damage, load_model

SENTENCES = """The cat sat on the mat. The dog sat on the log. A cat and a dog ran to the house.
The cat was small. The dog was big. She said that the cat was small and the dog was big.
The old man saw the cat. The child saw the dog and the cat. The cat ran. The dog ran."""


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A 3-gram array folder with its Kneser-Ney tables."""
    tokenizer = get_tokenizer("words")
    model = NgramModel.from_sentences(list(tokenizer.sentences(SENTENCES)) * 2, order=3, tokenizer=tokenizer,
                                      min_count=1)
    model.smoothing("kn").tables()  # made and kept on the trie: saved with it
    return save_model(model, tmp_path_factory.mktemp("orig") / "m.ngram")


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    """A text to score (the models here have no corpus record, so no held-out text)."""
    path = tmp_path_factory.mktemp("text") / "t.txt"
    path.write_text("The cat sat on the log. The old dog ran to the man.\n", encoding="utf-8")
    return path


@pytest.fixture
def model(original, tmp_path) -> Path:
    return Path(shutil.copytree(original, tmp_path / "m.ngram"))


def edit(folder: Path, name: str, change) -> None:
    """Change one array of a model folder in place (same dtype and length)."""
    array = np.load(folder / f"{name}.npy").copy()
    change(array)
    np.save(folder / f"{name}.npy", array, allow_pickle=False)


def set_at(i: int, value):
    def change(array):
        array[i] = value
    return change


def run(*args: str):
    return CliRunner().invoke(ngram_main, [str(a) for a in args])


def one_error_line(result) -> str:
    """The run ended in exactly one `Error:` line, exit 1, with no exception escaping."""
    assert result.exit_code == 1 and not isinstance(result.exception, (IndexError, ValueError, TypeError)), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# --------------------------------------------------------------------------- the header


@pytest.mark.parametrize("raw, message", [
    ('"total": ' + "1" * 5000, "not valid JSON"),  # int() refuses 5,000 digits: was an uncaught ValueError
    ('"total": NaN', "not valid JSON"),  # NaN is not JSON: was accepted
    ('"total": 1.5', "non-negative integer"),
    ('"order": 65', "out of range"),
])
def test_header_numbers_are_checked(model, raw, message):
    text = (model / HEADER).read_text()
    key = raw.split(":")[0]
    start = text.index(key)
    end = text.index(",", start)
    (model / HEADER).write_text(text[:start] + raw + text[end:])
    with pytest.raises(UserError, match=message):
        load_arrays(model)
    assert message in one_error_line(run("predict", model, "the cat"))


@pytest.mark.parametrize("dtype", [["<i4"], {"a": 1}, 4, None])
def test_an_array_entry_with_a_dtype_of_the_wrong_type_is_refused(model, dtype):
    header = json.loads((model / HEADER).read_text())
    header["arrays"]["k1.ids"]["dtype"] = dtype  # a list or dict was TypeError: unhashable
    (model / HEADER).write_text(json.dumps(header))
    with pytest.raises(UserError, match="entry for k1.ids is malformed"):
        load_arrays(model)


@pytest.mark.parametrize("shape", [[2.0], ["3"], [True], [-1], [[3]], [3, 1]])
def test_an_array_entry_with_a_malformed_shape_is_refused(model, shape):
    header = json.loads((model / HEADER).read_text())
    header["arrays"]["k2.counts"]["shape"] = shape
    (model / HEADER).write_text(json.dumps(header))
    with pytest.raises(UserError, match="entry for k2.counts is malformed"):
        load_arrays(model)


def test_one_order_bound_everywhere():
    from ngram import arpa as ngram_arpa

    assert ngram_io.MAX_ORDER is MAX_ORDER and ngram_arpa.MAX_ORDER is MAX_ORDER == 64


# ----------------------------------------------------------------------- the .npy files


@pytest.mark.parametrize("old, new", [
    (b"{'descr'", b"{'descr' ("),  # tokenize.TokenError: EOF in multi-line statement
    (b"'fortran_order'", b"'fortran order'"),  # SyntaxError in the literal
    (b"'shape': (", b"'shape': (("),  # TokenError again
])
def test_a_damaged_npy_header_is_one_error(model, old, new):
    path = model / "k1.ids.npy"
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(UserError, match="not a readable NumPy array|expected"):
        load_arrays(model)
    one_error_line(run("predict", model, "the cat"))


# ------------------------------------------------------ values: verify, and the commands


VALUE_DAMAGE = [
    ("k2.counts", set_at(0, -5), "counts below 1"),  # np.bincount on a negative count: ValueError
    ("k3.counts", set_at(1, 0), "counts below 1"),
    ("k2.counts", set_at(0, 10**9), "larger than their context"),
    ("k1.continuation", set_at(3, -1), "continuation"),  # discount[c] with c = -1: IndexError
    ("k2.continuation", set_at(2, 10**6), "continuation"),
    ("k1.ids", set_at(2, 10**6), "outside the vocabulary"),  # distribution's p[ids]: IndexError
    ("k2.ids", set_at(0, -3), "outside the vocabulary"),
    ("k1.ids", lambda a: a.__setitem__(slice(None), a[::-1].copy()), "not sorted"),
    ("k1.first_child", lambda a: a.__setitem__(slice(1, -1), a[1:-1][::-1].copy()), "children ranges"),  # np.repeat < 0
    ("kn0.gamma", set_at(0, np.nan), "Kneser-Ney table kn0.gamma"),
    ("kn1.gamma", set_at(0, -1.0), "Kneser-Ney table kn1.gamma"),
    ("kn1.gamma", lambda a: a.__setitem__(slice(None), 1.0), "Kneser-Ney table kn1.gamma"),  # in range, still wrong
    ("kn0.total", set_at(0, 0), "Kneser-Ney table kn0.total"),
    ("kn2.total", lambda a: a.__setitem__(slice(None), 1), "Kneser-Ney table kn2.total"),
    ("kn.discounts", set_at(0, np.inf), "Kneser-Ney tables"),
]


@pytest.mark.parametrize("name, change, message", VALUE_DAMAGE)
def test_verify_finds_damage_that_loading_does_not_read(model, name, change, message):
    edit(model, name, change)
    trie, _ = load_arrays(model)  # loading stays O(1): the values are not read
    with pytest.raises(UserError, match=f"{message}.*the model is damaged"):
        trie.verify()


@pytest.mark.parametrize("name, change, message", VALUE_DAMAGE)
def test_commands_on_damaged_values_give_one_error_or_sane_output(model, text, name, change, message):
    """Every command either prints sane results (the damage was not on its path) or one
    `Error:` line; when an error, a crash was diagnosed as damage, never a traceback."""
    edit(model, name, change)
    for args in (["predict", model, "the cat", "--json"], ["perplexity", model, text, "--smoothing", "kn", "--no-progress", "--json"],
                 ["complete", model, "the cat", "--json"], ["predict", model, "a dog", "--smoothing", "addk", "--json"]):
        result = run(*args)
        if result.exit_code == 0:
            out = json.loads(result.stdout)
            if args[0] == "predict":
                p = [c["probability"] for c in out["candidates"]] + [out["end_of_sentence"], out["unknown_word"]]
                assert all(0 <= x <= 1 for x in p) and sum(p) <= 1 + 1e-6, (args, result.stdout)
            elif args[0] == "perplexity":
                assert all(r["per_token"] is None or r["per_token"] >= 1 for r in out["results"])
        else:
            one_error_line(result)


@pytest.mark.parametrize("command, name, change", [
    ("predict", "k1.first_child", lambda a: a.__setitem__(slice(1, -1), a[1:-1][::-1].copy())),  # a lookup's check
    ("predict", "kn1.gamma", lambda a: a.__setitem__(slice(None), 1.0)),  # probabilities summing past 1
    ("predict", "kn0.gamma", set_at(0, -2.0)),  # negative probabilities
    ("perplexity", "kn0.gamma", set_at(0, -1.0)),  # a Kneser-Ney probability of 0
    ("perplexity", "k2.counts", set_at(0, -5)),  # np.bincount on a negative count: ValueError, diagnosed
    ("perplexity", "k1.ids", set_at(2, 10**6)),  # an id out of range: IndexError, diagnosed
    ("generate", "k1.ids", set_at(2, 10**6)),
    ("show", "k1.first_child", lambda a: a.__setitem__(slice(1, -1), a[1:-1][::-1].copy())),
])
def test_a_crash_or_an_impossible_result_on_a_damaged_model_says_so(model, text, command, name, change):
    edit(model, name, change)
    args = {"perplexity": [command, model, text, "--smoothing", "all", "--no-progress"],
            "show": [command, model, "the"]}.get(command, [command, model, "the cat", "--smoothing", "kn"])
    line = one_error_line(run(*args))
    assert line.endswith("the model is damaged")


def test_the_originals_verify_and_score(original, text):
    trie, _ = load_arrays(original, verify=True)
    assert trie.kn_tables  # the Kneser-Ney tables were checked too
    result = run("perplexity", original, text, "--smoothing", "kn", "--no-progress", "--json")
    assert result.exit_code == 0 and all(r["per_token"] >= 1 for r in json.loads(result.stdout)["results"])


def test_a_real_bug_stays_a_traceback(original):
    """diagnose_damage re-raises what verify cannot explain: a bug must stay visible."""
    with pytest.raises(IndexError, match="a bug"):
        with diagnose_damage():
            load_model(original)
            raise IndexError("a bug")


def test_damage_under_diagnose_damage_becomes_one_user_error(model):
    edit(model, "k1.continuation", set_at(3, -1))
    with pytest.raises(UserError, match="continuation counts .* the model is damaged"):
        with diagnose_damage():
            load_model(model)
            raise IndexError("index -1 is out of bounds")


def test_outside_diagnose_damage_nothing_is_kept(original):
    load_model(original)
    assert ngram_io._WATCHED.get() is None


# ------------------------------------------------------------------- ARPA-imported models


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    tokenizer = get_tokenizer("words")
    model = NgramModel.from_sentences(list(tokenizer.sentences(SENTENCES)), order=3, tokenizer=tokenizer, min_count=1)
    folder = tmp_path_factory.mktemp("arpa")
    arpa = write_arpa(model.smoothing("kn"), folder / "m.arpa")
    return save_model(import_arpa(arpa, tokenizer), folder / "imported.ngram")


@pytest.mark.parametrize("name, value, message", [
    ("k2.logprob", np.nan, "log10 probabilities of order 2 hold NaN"),
    ("k1.logprob", 0.5, "log10 probabilities of order 1 hold values above 0"),
    ("k1.backoff", np.inf, "back-off weights of order 1 hold NaN"),
])
def test_an_imported_models_log_values_are_verified(imported, tmp_path, name, value, message):
    folder = Path(shutil.copytree(imported, tmp_path / "i.ngram"))
    load_arrays(folder, verify=True)
    edit(folder, name, set_at(1, value))
    with pytest.raises(UserError, match=message):
        load_arrays(folder, verify=True)


# ---------------------------------------------------------------------- ARPA declarations


@pytest.mark.parametrize("line, message", [
    ("ngram 99999999999=0", "line 2: order 99,999,999,999 is out of range"),  # read_arpa appended that many tables
    ("ngram 65=1", "line 2: order 65 is out of range"),
    ("ngram 1=" + "9" * 5000, "line 2: expected 'ngram K=N'"),  # int() of 5,000 digits: ValueError
    ("ngram ²=1", "line 2: expected 'ngram K=N'"),  # isdigit() but not int()
])
def test_arpa_declarations_are_bounded(tmp_path, line, message):
    path = tmp_path / "x.arpa"
    path.write_text(f"\\data\\\n{line}\n\n\\1-grams:\n-1.0\tthe\n\n\\end\\\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_arpa(path)
    with pytest.raises(UserError):
        list(ArpaReader(path))


def test_a_section_header_with_a_huge_order_is_one_error(tmp_path):
    path = tmp_path / "x.arpa"
    path.write_text("\\data\\\nngram 1=1\n\n\\" + "9" * 5000 + "-grams:\n-1.0\tthe\n\\end\\\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 4: a section for an order"):
        read_arpa(path)


# ----------------------------------------------------------------- training checkpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny training run stopped after 4 of 8 steps: (corpus, output folder)."""
    from test_train_cli import TINY_ARGS, write_corpus
    from transformer.train_cli import train

    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), sentences=200)
    out = tmp_path_factory.mktemp("run") / "run"
    args = [str(corpus), "-o", str(out), *TINY_ARGS, "--steps", "4"]
    assert CliRunner().invoke(train, args).exit_code == 0
    return corpus, out


def damaged_checkpoint(trained, tmp_path, change_meta=None, change_tensors=None, raw=None) -> Path:
    """A copy of the run whose checkpoint's metadata (or tensors) were changed."""
    from safetensors.numpy import load_file, save_file

    from transformer.checkpoint import CHECKPOINT_FILE
    from safetensors import safe_open

    out = Path(shutil.copytree(trained[1], tmp_path / "run"))
    path = out / CHECKPOINT_FILE
    with safe_open(str(path), framework="numpy") as handle:
        meta = json.loads(handle.metadata()["trainer"])
    tensors = load_file(str(path))
    if change_meta:
        change_meta(meta)
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(path), metadata={"format": "np", "trainer": raw if raw is not None else json.dumps(meta)})
    return out


def resume(trained, out: Path):
    from transformer.train_cli import train

    return CliRunner().invoke(train, [str(trained[0]), "-o", str(out), "--resume", "--no-progress"])


def put(path: tuple, value):
    def change(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (put(("model", "n_layer"), "1"), "n_layer must be a whole number"),  # was GPT2Config(**meta["model"]) unchecked
    (put(("model", "extra"), 1), "model settings are malformed"),  # was TypeError: unexpected keyword
    (put(("model",), [1, 2]), "model settings are malformed"),
    (put(("train", "batch_size"), "4"), "batch_size must be a whole number"),  # was TypeError in a comparison
    (put(("train", "lr"), [0.1]), "lr must be a finite number"),
    (put(("train", "dropout"), 2.0), "dropout must be in"),
    (put(("rng", "state", "state"), "x"), "random generator"),
    (put(("rng",), None), "random generator"),
    (put(("step",), -1), "step must be between"),
    (put(("losses",), ["a"]), "a loss must be a number"),
    (put(("evals",), [[1]]), "evaluations are malformed"),
    (put(("seconds",), "1"), "seconds must be a finite number"),
    (put(("record", "corpus"), "x"), "record of its corpus is malformed"),
    (put(("record", "train_tokens"), 2.5), "train_tokens must be a whole number"),
    (put(("record", "segments"), {"a": 1}), "segments are malformed"),
    (put(("record",), []), "record is malformed"),
])
def test_a_damaged_checkpoint_is_one_error_line(trained, tmp_path, change, message):
    result = resume(trained, damaged_checkpoint(trained, tmp_path, change_meta=change))
    line = one_error_line(result)
    assert message in line, line


@pytest.mark.parametrize("raw, message", [
    ('{"format": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ('{"format": "trie-vs-transformer/train checkpoint v1", "step": ' + "1" * 5000 + "}", "not valid JSON"),
    ("not json", "not valid JSON"),
])
def test_checkpoint_metadata_that_is_not_json_is_one_error_line(trained, tmp_path, raw, message):
    result = resume(trained, damaged_checkpoint(trained, tmp_path, raw=raw))
    assert message in one_error_line(result)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop("param.wte.weight"), "param tensors do not match"),
    (lambda t: t.__setitem__("adam_v.wpe.weight", t["adam_v.wpe.weight"][:3].copy()), "expected"),
    (lambda t: t["adam_m.ln_f.bias"].__setitem__(0, np.nan), "NaN or infinite"),
])
def test_checkpoint_tensors_are_checked(trained, tmp_path, change, message):
    result = resume(trained, damaged_checkpoint(trained, tmp_path, change_tensors=change))
    assert message in one_error_line(result)
