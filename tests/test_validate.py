"""corpora/validate.py and the readers that use it: each class of hostile input the
campaign of issue 14 found, as a small test with the error it must give."""
from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import hostile
from corpora.common import UserError
from corpora.documents import read_text_argument
from corpora.validate import (
    cap_line,
    check_finite_array,
    check_int,
    json_with_depth_limit,
    regular_file,
    safetensors_header,
)
from transformer.config import GPT2Config
from transformer.weights import load_params, map_tensors

# ------------------------------------------------------------------ small checks


def test_cap_line_keeps_one_short_line():
    assert cap_line("short") == "short"
    capped = cap_line("a\nb" + "c" * 1000, 300)
    assert len(capped) == 300 and capped.endswith("…") and "\n" not in capped
    assert cap_line("a\nbc" + "c" * 500, 10) == "a bcccccc…"


@pytest.mark.parametrize("value", [2.9, 2.0, True, "2", None, [2], 10**400, 10**5000],
                         ids=["2.9", "2.0", "True", "str", "None", "list", "10**400", "10**5000"])
def test_check_int_refuses_what_is_not_a_whole_number_in_range(value):
    with pytest.raises(UserError, match="n_layer must be"):
        check_int("n_layer", value, 1, 256)
    assert check_int("n_layer", 2, 1, 256) == 2 and check_int("n", np.int64(3), 1, 5) == 3


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' * 70 + "1" + "}" * 70, "nested too deeply"),
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": -Infinity}', "Infinity is not a JSON number"),
    ('{"a": 1, "a": 2}', "appears twice"),
    ('{"a": 1' + "0" * 5000 + "}", "not valid JSON"),
    (b'{"a": "\xff"}', "not UTF-8"),
])
def test_json_with_depth_limit_refuses_hostile_json(text, message):
    with pytest.raises(UserError, match=message):
        json_with_depth_limit(text, 64, "f.json")


def test_json_within_the_limit_is_read():
    assert json_with_depth_limit('{"a": [[1, 2.5e3]], "b": null}') == {"a": [[1, 2500.0]], "b": None}


def test_special_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"pipe\.txt is not a regular file \(a named pipe\)"):
        read_text_argument(fifo)  # would block forever if opened
    with pytest.raises(UserError, match=r"/dev/zero is not a regular file \(a character device\)"):
        read_text_argument("/dev/zero")  # would fill memory if read


def test_text_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    assert read_text_argument(path, max_bytes=5000).startswith("word")
    with pytest.raises(UserError, match="5,000 bytes, over the limit of 4,999 bytes"):
        read_text_argument(path, max_bytes=4999)
    assert regular_file(path) == 5000


def test_finite_check_names_the_array():
    check_finite_array(np.ones((3, 4), np.float32), "w")
    bad = np.ones(10, np.float32)
    bad[[2, 5]] = [np.nan, np.inf]
    with pytest.raises(UserError, match="tensor 'w' holds 2 NaN or infinite values"):
        check_finite_array(bad, "tensor 'w'")
    check_finite_array(np.full(1000, 3e38, np.float32), "big but finite")  # no float32 overflow in the sum


# ------------------------------------------------------------------ safetensors


def write_safetensors(path: Path, header: object, body: bytes, length_delta: int = 0) -> Path:
    text = hostile.dumps_with_raw(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) + length_delta) + text + body)
    return path


def two_tensors(**changes) -> dict:
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}
    for name, entry in changes.items():
        header[name] = entry if not isinstance(entry, dict) else {**header[name], **entry}
    return header


@pytest.mark.parametrize("changes, message", [
    ({"a": [1, 2]}, "malformed header entry"),
    ({"a": {"data_offsets": ["0", "24"]}}, "malformed data_offsets"),
    ({"a": {"data_offsets": [0.0, 24.0]}}, "malformed data_offsets"),
    ({"a": {"data_offsets": [24, 0]}}, "malformed data_offsets"),
    ({"a": {"dtype": ["F32"]}}, "unknown dtype"),
    ({"a": {"dtype": "I64"}}, "dtype I64; expected F32"),
    ({"a": {"shape": ["2", "3"]}}, "malformed shape"),
    ({"a": {"shape": [2.0, 3.0]}}, "malformed shape"),
    ({"a": {"shape": [True, 6]}}, "malformed shape"),
    ({"a": {"shape": [-2, -3]}}, "malformed shape"),
    ({"a": {"shape": [[2], 3]}}, "malformed shape"),
    ({"a": {"shape": [2**40, 2**40, 2**40]}}, "does not match its shape"),  # product overflows int64
    ({"b": {"data_offsets": [16, 32]}}, "overlap"),
    ({"b": {"data_offsets": [0, 16]}}, "overlap"),  # aliased onto a's bytes
    ({"b": {"data_offsets": [10**15, 10**15 + 16]}}, "truncated"),
])
def test_malformed_safetensors_entries_are_refused(tmp_path, changes, message):
    path = write_safetensors(tmp_path / "m.safetensors", two_tensors(**changes), bytes(40))
    with pytest.raises(UserError, match=message):
        map_tensors(path)


@pytest.mark.parametrize("delta", [-1, 1, 2**40])
def test_a_wrong_header_length_is_refused(tmp_path, delta):
    path = write_safetensors(tmp_path / "m.safetensors", two_tensors(), bytes(40), length_delta=delta)
    with pytest.raises(UserError):
        map_tensors(path)


def test_a_deep_safetensors_header_is_refused(tmp_path):
    deep = hostile.Raw('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UserError, match="nested too deeply"):
        safetensors_header(write_safetensors(tmp_path / "m.safetensors", deep, b""))


def test_a_valid_header_is_read_in_offset_order(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", {"__metadata__": {"x": "y"}, **two_tensors()},
                             np.arange(10, dtype="<f4").tobytes())
    entries, start = safetensors_header(path)
    assert [(e.name, e.shape, e.begin, e.end) for e in entries] == [("a", (2, 3), 0, 24), ("b", (4,), 24, 40)]
    np.testing.assert_array_equal(map_tensors(path)["b"], [6, 7, 8, 9])


# ----------------------------------------------------------------- GPT-2 folders


@pytest.fixture()
def gpt2(tmp_path) -> Path:
    return hostile.make_gpt2_folder(tmp_path / "gpt2")


def edit_config(folder: Path, **values) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(values)
    (folder / "config.json").write_text(hostile.dumps_with_raw(config))


@pytest.mark.parametrize("values, message", [
    ({"n_layer": 2.9}, "n_layer must be a whole number, got 2.9"),
    ({"n_layer": hostile.Raw("1e400")}, "n_layer must be a whole number, got inf"),
    ({"n_positions": hostile.Raw("1e400")}, "n_ctx must be a whole number"),
    ({"n_layer": 1_000_000_000}, "n_layer must be between 1 and 256"),
    ({"n_head": 3}, "not divisible by n_head"),
    ({"layer_norm_epsilon": -1}, "layer_norm_epsilon must be a finite number above 0"),
    ({"layer_norm_epsilon": hostile.Raw("NaN")}, "NaN is not a JSON number"),
    ({"vocab_size": True}, "vocab_size must be a whole number, got True"),
    ({"vocab_size": 100}, "has shape"),  # consistent with the tensors: wte has 261 rows
])
def test_bad_configs_are_refused_before_loading(gpt2, values, message):
    edit_config(gpt2, **values)
    with pytest.raises(UserError, match=message):
        load_params(gpt2)


def test_a_model_bigger_than_memory_is_refused_with_the_number(gpt2, monkeypatch):
    edit_config(gpt2, n_embd=65536, n_head=1, vocab_size=10_000_000)
    monkeypatch.setattr("corpora.validate.available_memory_bytes", lambda: 16 * 1024**3)
    with pytest.raises(UserError, match=r"would need 3,[0-9,]+ bytes of memory; this machine has 17,179,869,184"):
        load_params(gpt2)
    assert GPT2Config(n_embd=65536, n_head=1, vocab_size=10_000_000).parameter_count * 4 > 16 * 1024**3


def test_nan_weights_are_refused_naming_the_tensor(gpt2):
    hostile.set_weight(gpt2 / "model.safetensors", float("nan"))
    first = min(safetensors_header(gpt2 / "model.safetensors")[0], key=lambda e: e.begin).name
    with pytest.raises(UserError, match=rf"tensor '{first.removeprefix('transformer.')}' holds 1 NaN"):
        load_params(gpt2)


def run(tool: str, *args: str):
    return CliRunner().invoke(hostile.tool_main(tool), list(args))


def test_a_huge_vocab_id_and_a_1_mb_merges_line_give_short_errors(gpt2):
    vocab = json.loads((gpt2 / "vocab.json").read_text())
    vocab["th"] = 10**12
    (gpt2 / "vocab.json").write_text(json.dumps(vocab))
    result = run("transformer", "tokenize", "x", "--model", str(gpt2))
    assert result.exit_code == 1 and "has id 1000000000000, but the 261 tokens must have the ids 0 to 260" in result.stderr
    vocab["th"] = 256
    (gpt2 / "vocab.json").write_text(json.dumps(vocab))
    (gpt2 / "merges.txt").write_text("#version: 0.2\n" + "a" * 1_000_000 + " b\n")
    result = run("transformer", "tokenize", "x", "--model", str(gpt2))
    assert result.exit_code == 1 and "line 2: 1,000,002 characters long" in result.stderr
    assert len(result.stderr.strip()) <= 300 and result.stderr.count("\n") == 1


def test_error_lines_are_capped_by_friendly_errors(gpt2):
    (gpt2 / "merges.txt").write_text("#version: 0.2\n" + "a b c " * 300 + "\n")  # quoted in the error
    result = run("transformer", "tokenize", "x", "--model", str(gpt2))
    line = result.stderr.strip()
    assert result.exit_code == 1 and line.startswith("Error: ") and len(line) == 300 and line.endswith("…")


# ------------------------------------------------------------------ --json output


def test_echo_json_prints_infinity_as_null_and_refuses_nan():
    import click

    from corpora.cli_common import echo_json, friendly_errors

    @click.command()
    @click.argument("value", type=float)
    @friendly_errors
    def show(value):
        echo_json({"figure": value, "list": [1.5, value]})

    result = CliRunner().invoke(show, ["inf"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"figure": None, "list": [1.5, None]}
    result = CliRunner().invoke(show, ["nan"])
    assert result.exit_code == 1 and "NaN" not in result.stdout
    assert result.stderr.startswith("Error: the figure is NaN (not a number)")
    assert json.loads(CliRunner().invoke(show, ["2.5"]).stdout)["figure"] == 2.5


# ------------------------------------------------------------- gzip-JSON n-grams


@pytest.fixture(scope="module")
def ngram_json(tmp_path_factory) -> Path:
    return hostile.make_ngram_models(tmp_path_factory.mktemp("ngram"))[1]


def edited_model(source: Path, where: Path, change) -> Path:
    document = json.loads(gzip.decompress(source.read_bytes()))
    change(document)
    where.write_bytes(gzip.compress(hostile.dumps_with_raw(document).encode()))
    return where


def first_child(document: dict) -> dict:
    return next(v for k, v in document["trie"].items() if k not in ("", "\x00"))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(order=10**30), "order 1000000000000000000000000000000 is out of range"),
    (lambda d: d.update(order=2.0), "order, vocabulary or trie missing"),
    (lambda d: first_child(d).update({"": 2.5}), r"count (or continuation count|of order 1)"),
    (lambda d: first_child(d).update({"": True}), r"count (or continuation count|of order 1)"),
    (lambda d: first_child(d).update({"": -375}), r"count (or continuation count|of order 1)"),
    (lambda d: first_child(d).update({"": {"a": 1}}), r"count (or continuation count|of order 1)"),
    (lambda d: first_child(d).pop("\x00"), r"count (or continuation count|of order 1)"),
    (lambda d: d["trie"].update({"cat": [1, 2]}), "not an object"),
    (lambda d: d["trie"].update({"zebra": d["trie"]["cat"]}), "'zebra', which is not in the vocabulary"),
    (lambda d: first_child(d).update({"": 10**9}), "not from 1 to its parent's count"),
    (lambda d: d.update(statistics=[1, 2]), "statistics entry is not an object"),
    (lambda d: d["statistics"].update(raw1=[1, "2", 3, 4]), "statistics table raw1 is malformed"),
    (lambda d: d.update(tokenizer=["words"]), "tokenizer entry is not an object"),
    (lambda d: d["tokenizer"].update(lowercase="yes"), "saved tokenizer settings are malformed"),
    (lambda d: d["corpus"].update(documents=[{"name": 7}]), "record of its corpus is malformed"),
    (lambda d: d["corpus"]["documents"][0].update(name="../../etc/passwd"), "record of its corpus is malformed"),
    (lambda d: d["vocab"].append(d["vocab"][0]), "vocabulary is not a list of distinct tokens"),
])
def test_damaged_gzip_json_models_are_refused(ngram_json, tmp_path, change, message):
    from ngram.io import load_model

    path = edited_model(ngram_json, tmp_path / "bad.json.gz", change)
    with pytest.raises(UserError, match=message):
        load_model(path)


def test_the_untouched_json_model_loads(ngram_json):
    from ngram.io import load_model

    assert load_model(ngram_json).order == 3


def test_a_gzip_bomb_is_not_unpacked_whole(tmp_path):
    from ngram.io import gunzip_limited

    bomb = gzip.compress(b" " * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(UserError, match="unpacks to more than 1,000,000 bytes"):
        gunzip_limited(bomb, 1_000_000, tmp_path / "bomb.json.gz")
    with pytest.raises(UserError, match="truncated or corrupted"):
        gunzip_limited(bomb[:-20], 10_000_000, tmp_path / "bomb.json.gz")


def test_a_nan_probability_is_never_printed(gpt2, monkeypatch):
    monkeypatch.setattr("transformer.cli.top_next_tokens", lambda model, ids, k: [(5, float("nan")), (6, 0.1)])
    for extra in ([], ["--json"]):
        result = run("transformer", "predict", "the cat", "--model", str(gpt2), *extra)
        assert result.exit_code == 1 and result.stdout == "" and "nan" not in result.stdout.lower()
        assert result.stderr.startswith("Error: the forward pass gave nan instead of a number")
