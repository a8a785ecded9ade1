"""Hostile files, made at run time: small valid models, then seeded corruptions of them.

Shared by the fuzz suite (`tests/test_fuzz_files.py`, in-process through click's
CliRunner) and the campaign (`benchmarks/hostile_inputs.py`, one subprocess a variant).
Nothing here is collected by pytest (the name does not start with `test_`).

A *variant* is one corrupted copy of a file plus the command that reads it. Its
*verdict* is one of:

- "clean error": exit code non-zero, exactly one `Error:` line on stderr, no traceback;
- "traceback":   an exception escaped (or "Traceback" appeared on stderr);
- "hang":        it did not finish within the time limit;
- "bad output":  exit 0, but the JSON output is not sane (see `sane_output`);
- "ok":          exit 0 with sane output (a harmless corruption, e.g. an unused config key).
"""
from __future__ import annotations

import gzip
import json
import math
import os
import random
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

VERDICTS = ("ok", "clean error", "traceback", "hang", "bad output")

SENTENCES = """The cat sat on the mat. The dog sat on the log. A cat and a dog ran to the house.
The house was big and the door was green. I want to see the sea. I want to know the truth.
She said that the cat was small. He said that the dog was big. They ran to the sea and back.
It was a dark and stormy night. The rain fell on the house. The cat saw the dog at the door."""


# ------------------------------------------------------------------- the valid files


def make_gpt2_folder(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 8-wide GPT-2 with random weights and a byte-level tokenizer of 261 tokens."""
    from safetensors.numpy import save_file

    from corpora.tokenizers.bpe import BPETokenizer, bytes_to_unicode
    from transformer.config import GPT2Config
    from transformer.weights import expected_shapes

    symbols = list(bytes_to_unicode().values())
    merges = [("t", "h"), ("th", "e"), ("a", "t"), ("Ġ", "c")]
    vocab = {s: i for i, s in enumerate(symbols)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    BPETokenizer(vocab, merges).save(folder)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_ctx=16, vocab_size=len(vocab))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 8, "n_positions": 16,
        "vocab_size": len(vocab), "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}, indent=1))
    rng = np.random.default_rng(seed)
    tensors = {f"transformer.{name}": rng.normal(0, 0.3, shape).astype(np.float32)
               for name, shape in expected_shapes(config).items()}
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def make_ngram_models(folder: Path) -> tuple[Path, Path, Path]:
    """A 3-gram model of SENTENCES as an array folder, as gzip JSON, and as an ARPA file."""
    from ngram import NgramModel
    from ngram.arpa import write_arpa
    from ngram.io import save_model

    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "a.txt").write_text((SENTENCES + "\n") * 3, encoding="utf-8")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NgramModel.build(corpus, order=3, min_count=1, heldout_fraction=0.1, progress=False)
        arrays = save_model(model, folder / "m.ngram")
        as_json = save_model(model, folder / "m.json.gz")
        arpa = write_arpa(model.smoothing("kn"), folder / "m.arpa")
    return Path(arrays), Path(as_json), Path(arpa)


# ---------------------------------------------------------------------- corruptions


class Raw(str):
    """A value written into JSON as raw text (NaN, 1e400, a 5,000-digit number, deep nesting)."""


HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 2.9, 10**30, 2**64, -(2**63), "", "x" * 5000, [], {}, [1, 2], {"a": 1},
    [[1]], ["1", "2"], [1.5, 2], [-1, 3], [True, 1],
    Raw("1e400"), Raw("NaN"), Raw("-Infinity"), Raw("1" + "0" * 5000), Raw("[" * 50_000 + "]" * 50_000),
    Raw("1e-400"), Raw('"\\ud800"'),
]


#: Values that look almost right in a safetensors entry (the header's own hostile cases).
ENTRY_VALUES: dict[str, list[Any]] = {
    "shape": [["2", "3"], [2.0, 3.0], [True, 8], [-1, -8], [[2], 3], [2**40, 2**40, 2**40], [0], [], [1] * 20, [8, 0]],
    "data_offsets": [[10**12, 10**12], [0, 2**64], [5, 3], [0, 32], ["0", "32"], [0.0, 32.0], [-32, 0], [0], [0, 0, 0]],
    "dtype": ["F64", "I32", "F16", "BF16", ["F32"], "f32", "", "F8_E4M3"],
}


def dumps_with_raw(value: Any) -> str:
    """json.dumps, then each Raw placeholder replaced by its raw text."""
    raws: list[str] = []

    def mark(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(str(v))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), ensure_ascii=False)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw)
    return text


def json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (a tuple of keys and indices) into a decoded JSON value, the root first."""
    paths = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            paths += json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:50]):
            paths += json_paths(v, prefix + (i,))
    return paths


def set_path(value: Any, path: tuple, new: Any, delete: bool = False) -> Any:
    """`value` with the item at `path` replaced by `new` (or deleted); the root may be replaced."""
    if not path:
        return new
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return value


def edit_json(value: Any, rng: random.Random, keys: tuple[str, ...] = ()) -> tuple[Any, str]:
    """One hostile edit of a decoded JSON value: (edited value, what was done).

    With `keys`, the edit usually hits one of these top-level keys (the ones that matter).
    """
    if keys and rng.random() < 0.7:
        path: tuple = (rng.choice(keys),)
        if not isinstance(value, dict):
            path = ()
    else:
        path = rng.choice(json_paths(value))
    new = rng.choice(HOSTILE_VALUES)
    if path and rng.random() < 0.1:
        return set_path(value, path, None, delete=True), f"delete {path}"
    if path and rng.random() < 0.1 and isinstance(new, (int, float)) and not isinstance(new, bool):
        new = -new
    return set_path(value, path, new), f"{list(path)} = {short(new)}"


def short(value: Any) -> str:
    """A value as a short label for a variant."""
    text = str(value) if isinstance(value, Raw) else repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def byte_edit(data: bytes, rng: random.Random, start: int = 0) -> tuple[bytes, str]:
    """Truncate, flip bytes, insert or delete bytes at random offsets at or after `start`."""
    kind = rng.choice(["truncate", "flip", "flip", "insert", "delete", "zero"])
    end = max(start + 1, len(data))
    at = rng.randrange(start, end)
    if kind == "truncate":
        return data[:at], f"truncated at {at}"
    if kind == "flip":
        edited = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(start, end) if data else 0
            if i < len(edited):
                edited[i] ^= 1 << rng.randrange(8)
        return bytes(edited), "bits flipped"
    if kind == "insert":
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[at:], f"bytes inserted at {at}"
    if kind == "delete":
        return data[:at] + data[at + rng.randint(1, 16):], f"bytes deleted at {at}"
    return data[:at] + b"\x00" * 64 + data[at + 64:], f"zeroed at {at}"


# ----------------------------------------------------------------- per file type


def corrupt_safetensors(path: Path, rng: random.Random) -> str:
    """One corruption of a safetensors file: its header's entries, its length, or its bytes."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    names = [n for n in header if n != "__metadata__"]
    kind = rng.choice(["entry"] * 5 + ["offsets", "offsets", "length", "bytes", "nan", "deep"])
    what = ""
    if kind == "entry":
        name = rng.choice(names)
        field_name = rng.choice(["dtype", "shape", "data_offsets", None])
        if field_name is None:
            header[name] = rng.choice(HOSTILE_VALUES)
            what = f"entry {name} = {short(header[name])}"
        else:
            pool = ENTRY_VALUES[field_name] if rng.random() < 0.6 else HOSTILE_VALUES
            header[name][field_name] = rng.choice(pool)
            what = f"{name}.{field_name} = {short(header[name][field_name])}"
    elif kind == "offsets":
        a, b = rng.sample(names, 2)
        how = rng.choice(["alias", "shift", "swap"])
        if how == "alias":  # onto a tensor of the same size, so only the overlap check can tell
            size = lambda n: header[n]["data_offsets"][1] - header[n]["data_offsets"][0]  # noqa: E731
            b = rng.choice([n for n in names if n != a and size(n) == size(a)] or [b])
            header[b]["data_offsets"] = list(header[a]["data_offsets"])
        elif how == "shift":
            delta = rng.choice([-8, -4, 4, 8, len(body), 10**15])
            header[a]["data_offsets"] = [o + delta for o in header[a]["data_offsets"]]
        else:
            header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
        what = f"offsets {how} {a} {b}"
    elif kind == "deep":
        header = Raw("{" + '"a":[' * 20_000 + "1" + "]" * 20_000 + "}")
        what = "deeply nested header"
    text = (dumps_with_raw(header) if kind != "deep" else str(header)).encode("utf-8")
    if kind == "length":
        delta = rng.choice([-1, 1, -len(text), 2**40, 2**64 - 1 - len(text)])
        out = struct.pack("<Q", max(0, len(text) + delta)) + text + body
        what = f"header length {delta:+}"
    elif kind == "bytes":
        out, what = byte_edit(data, rng)
    elif kind == "nan":
        out = bytearray(data)
        at = 8 + length + 4 * rng.randrange(len(body) // 4)
        out[at:at + 4] = struct.pack("<f", rng.choice([math.nan, math.inf, -math.inf, 3e38]))
        out, what = bytes(out), "a weight set to NaN/inf/huge"
    else:
        out = struct.pack("<Q", len(text)) + text + body
    path.write_bytes(out)
    return f"model.safetensors: {what}"


def set_weight(path: Path, value: float, index: int = 0) -> None:
    """Overwrite one float32 of a safetensors file's data (the `index`-th of the data section)."""
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    at = 8 + length + 4 * index
    data[at:at + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))


def corrupt_json_file(path: Path, rng: random.Random, keys: tuple[str, ...] = ()) -> str:
    """A JSON file edited (types, huge numbers, nesting) or its bytes damaged."""
    if rng.random() < 0.25:
        out, what = byte_edit(path.read_bytes(), rng)
        path.write_bytes(out)
        return f"{path.name}: {what}"
    value, what = edit_json(json.loads(path.read_text(encoding="utf-8")), rng, keys)
    path.write_text(dumps_with_raw(value), encoding="utf-8")
    return f"{path.name}: {what}"


def corrupt_merges(path: Path, rng: random.Random) -> str:
    """A merges file with a line replaced (too long, three parts, unknown symbols) or its bytes damaged."""
    lines = path.read_text(encoding="utf-8").split("\n")
    kind = rng.choice(["line", "line", "bytes"])
    if kind == "bytes":
        out, what = byte_edit(path.read_bytes(), rng)
        path.write_bytes(out)
        return f"merges.txt: {what}"
    i = rng.randrange(1, len(lines))
    lines[i] = rng.choice(["a" * 1_000_000 + " b", "a b c", "zz qq", "a", " ", "\x00 \x01", "Ġ Ġ", "a  b"])
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"merges.txt: line {i + 1} = {short(lines[i])}"


def corrupt_gpt2_folder(folder: Path, rng: random.Random) -> str:
    """One corruption of one file of a GPT-2 folder."""
    kind = rng.choice(["safetensors"] * 5 + ["config"] * 3 + ["vocab", "merges"])
    if kind == "safetensors":
        return corrupt_safetensors(folder / "model.safetensors", rng)
    if kind == "config":
        return corrupt_json_file(folder / "config.json", rng,
                                 ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "layer_norm_epsilon"))
    if kind == "vocab":
        return corrupt_json_file(folder / "vocab.json", rng)
    return corrupt_merges(folder / "merges.txt", rng)


def corrupt_npy(path: Path, rng: random.Random) -> str:
    """A .npy file damaged: its bytes, or replaced by an array of another dtype, shape or content."""
    kind = rng.choice(["bytes", "bytes", "dtype", "values", "object"])
    array = np.load(path, allow_pickle=False)
    if kind == "bytes":
        out, what = byte_edit(path.read_bytes(), rng)
        path.write_bytes(out)
        return f"{path.name}: {what}"
    if kind == "dtype":
        other = rng.choice([np.float64, np.int64, np.uint8, np.float32, np.int16])
        np.save(path, array.astype(other), allow_pickle=False)
        return f"{path.name}: as {np.dtype(other).name}"
    if kind == "object":
        path.write_bytes(path.read_bytes().replace(b"'<i4'", b"'|O' ", 1).replace(b"'|u1'", b"'|O' ", 1))
        return f"{path.name}: dtype object"
    edited = array.copy()
    if len(edited):
        i = rng.randrange(len(edited))
        edited[i] = rng.choice([-1, 0, 2**31 - 1, -(2**31), len(edited) + 5, 1]) if edited.dtype != np.uint8 else 255
    np.save(path, edited, allow_pickle=False)
    return f"{path.name}: one value changed"


def corrupt_ngram_folder(folder: Path, rng: random.Random) -> str:
    """One corruption of a model folder: its header.json or one of its arrays (or a file gone)."""
    kind = rng.choice(["header"] * 4 + ["array"] * 5 + ["missing"])
    if kind == "header":
        return corrupt_json_file(folder / "header.json", rng, ("order", "vocab_size", "total", "root_continuation",
                                                              "arrays", "metadata", "version"))
    arrays = sorted(folder.glob("*.npy"))
    target = rng.choice(arrays)
    if kind == "missing":
        target.unlink()
        return f"{target.name}: deleted"
    return corrupt_npy(target, rng)


def corrupt_ngram_json(path: Path, rng: random.Random) -> str:
    """One corruption of a gzip-JSON model: its decoded document edited, or its gzip bytes damaged."""
    raw = path.read_bytes()
    if rng.random() < 0.3:
        out, what = byte_edit(raw, rng)
        path.write_bytes(out)
        return f"{path.name}: {what}"
    document = json.loads(gzip.decompress(raw))
    trie_paths = [("trie",) + p for p in json_paths(document["trie"])[:400]]
    if rng.random() < 0.5:
        target = rng.choice(trie_paths)
        new = rng.choice(HOSTILE_VALUES)
        document = set_path(document, target, new)
        what = f"trie{list(target[1:])[:4]} = {short(new)}"
    else:
        document, what = edit_json(document, rng, ("order", "vocab", "statistics", "corpus", "tokenizer", "info",
                                                   "reserved_keys", "version"))
    path.write_bytes(gzip.compress(dumps_with_raw(document).encode("utf-8")))
    return f"{path.name}: {what}"


def corrupt_arpa(path: Path, rng: random.Random) -> str:
    """An ARPA file with a line edited (numbers, counts, orders) or its bytes damaged."""
    if rng.random() < 0.3:
        out, what = byte_edit(path.read_bytes(), rng)
        path.write_bytes(out)
        return f"{path.name}: {what}"
    lines = path.read_text(encoding="utf-8").split("\n")
    i = rng.randrange(len(lines))
    replacement = rng.choice([
        "nan\tthe", "-inf\tthe cat", "-1.0\tthe\tnan", "-1.0\tthe\tinf", "1e400\tthe", "-1.0", "ngram 99999999999=1",
        "ngram 2=99999999999", "\\99999999999-grams:", "\\2-grams:", "\\end\\", "x" * 100_000, "-1.0\t" + "a " * 50,
        "ngram 1=-1", "ngram =", "\\data\\", "-0.5\tthe the the the", "-1.0\tthe\t-1.0\textra",
    ])
    lines[i] = replacement
    path.write_text("\n".join(lines), encoding="utf-8")
    return f"{path.name}: line {i + 1} = {short(replacement)}"


def corrupt_tokenizer_folder(folder: Path, rng: random.Random) -> str:
    """vocab.json or merges.txt of a tokenizer folder damaged."""
    if rng.random() < 0.6:
        return corrupt_json_file(folder / "vocab.json", rng)
    return corrupt_merges(folder / "merges.txt", rng)


# ------------------------------------------------------------------------ variants


@dataclass
class Variant:
    """One corrupted input and the command that reads it."""

    target: str  # which table row it belongs to
    label: str  # what was corrupted
    tool: str  # "ngram", "transformer" or "arpa"
    args: list[str]
    check: Callable[[Any], bool] = field(repr=False, default=lambda output: True)


@dataclass
class Originals:
    """The valid files every variant starts from (made once per run)."""

    root: Path
    gpt2: Path
    tokenizer: Path
    ngram_folder: Path
    ngram_json: Path
    arpa: Path
    text: Path


def make_originals(root: Path) -> Originals:
    """Build every valid file under `root`."""
    gpt2 = make_gpt2_folder(root / "gpt2")
    tokenizer = root / "tokenizer"
    tokenizer.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(gpt2 / name, tokenizer / name)
    folder, as_json, arpa = make_ngram_models(root / "ngram")
    text = root / "text.txt"
    text.write_text("The cat sat on the mat. The dog ran to the sea.\n", encoding="utf-8")
    return Originals(root, gpt2, tokenizer, folder, as_json, arpa, text)


def fresh_copy(source: Path, where: Path) -> Path:
    """A copy of a file or folder to corrupt."""
    if source.is_dir():
        shutil.copytree(source, where)
    else:
        where.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, where)
    return where


def gpt2_variants(o: Originals, n: int, seed: int) -> list[Variant]:
    """`transformer predict` on n corrupted GPT-2 folders."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        folder = fresh_copy(o.gpt2, o.root / "v-gpt2" / str(i))
        label = corrupt_gpt2_folder(folder, rng)
        out.append(Variant("GPT-2 folder (`transformer predict`)", label, "transformer",
                           ["predict", "the cat", "--model", str(folder), "-k", "5", "--json"], sane_transformer))
    return out


def tokenizer_variants(o: Originals, n: int, seed: int) -> list[Variant]:
    """`transformer tokenize` with n corrupted tokenizer folders."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        folder = fresh_copy(o.tokenizer, o.root / "v-tok" / str(i))
        label = corrupt_tokenizer_folder(folder, rng)
        out.append(Variant("tokenizer files (`transformer tokenize`)", label, "transformer",
                           ["tokenize", "the cat sat", "--model", str(folder), "--json"], sane_tokenize))
    return out


def ngram_variants(o: Originals, n: int, seed: int, formats: str = "both") -> list[Variant]:
    """`ngram predict` (and every fifth `ngram perplexity`) on n corrupted models:
    `formats` "folder" (arrays), "json" (gzip JSON) or "both" (alternating)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if formats == "folder" or (formats == "both" and i % 2 == 0):
            model = fresh_copy(o.ngram_folder, o.root / "v-ngram" / f"{i}.ngram")
            label = corrupt_ngram_folder(model, rng)
        else:
            model = fresh_copy(o.ngram_json, o.root / "v-ngram" / f"{i}.json.gz")
            label = corrupt_ngram_json(model, rng)
        args, check = ngram_commands()[i % len(ngram_commands())]
        args = [str(model) if a == "MODEL" else str(o.text) if a == "TEXT" else a for a in args]
        kind = "array folder" if model.is_dir() else "gzip JSON"
        out.append(Variant(f"n-gram model, {kind} (`ngram predict`, ...)", label, "ngram", args, check))
    return out


def sane_generation(out: Any) -> bool:
    return isinstance(out["tokens"], list) and all(isinstance(t, str) for t in out["tokens"])


def sane_completions(out: Any) -> bool:
    return all(is_probability(c["probability"]) for c in out) and sum(c["probability"] for c in out) <= 1 + 1e-6


def sane_stats(out: Any) -> bool:
    return all(isinstance(n, int) and n >= 0 for n in out["ngrams_per_order"].values())


def ngram_commands() -> list[tuple[list[str], Callable[[Any], bool]]]:
    """The `ngram` commands each corrupted model is read by (in turn): MODEL and TEXT are filled in."""
    return [
    (["predict", "MODEL", "the cat", "-k", "5", "--json"], sane_ngram_prediction),
    (["predict", "MODEL", "the cat", "-k", "5", "--json"], sane_ngram_prediction),
    (["perplexity", "MODEL", "TEXT", "--smoothing", "kn", "--no-progress", "--json"], sane_perplexity),
    (["predict", "MODEL", "a dog", "--smoothing", "addk", "--json"], sane_ngram_prediction),
    (["generate", "MODEL", "the cat", "-n", "5", "--seed", "1", "--json"], sane_generation),
    (["complete", "MODEL", "the cat", "--json"], sane_completions),
    (["stats", "MODEL", "--json"], sane_stats),
    ]


def arpa_variants(o: Originals, n: int, seed: int) -> list[Variant]:
    """`ngram.arpa.read_arpa` (no command reads ARPA yet) on n corrupted ARPA files."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        path = fresh_copy(o.arpa, o.root / "v-arpa" / f"{i}.arpa")
        out.append(Variant("ARPA file (`read_arpa`)", corrupt_arpa(path, rng), "arpa", [str(path)], sane_arpa))
    return out


def text_variants(o: Originals) -> list[Variant]:
    """Hostile text inputs for `ngram perplexity` and `transformer perplexity` (special files included)."""
    root = o.root / "v-text"
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    fifo = root / "pipe.txt"
    if hasattr(os, "mkfifo"):
        if not fifo.exists():
            os.mkfifo(fifo)
        files["a named pipe"] = fifo
    for label, device in (("/dev/zero", "/dev/zero"), ("/dev/urandom", "/dev/urandom"), ("/dev/null", "/dev/null")):
        if Path(device).exists():
            files[label] = Path(device)
    link = root / "zero-link.txt"
    if Path("/dev/zero").exists():
        if not link.is_symlink():
            link.symlink_to("/dev/zero")
        files["a symlink to /dev/zero"] = link
    contents = {
        "empty": b"", "only spaces": b"   \n\n  ", "NUL bytes": b"the cat\x00\x00 sat", "invalid UTF-8": b"the \xff\xfe cat sat.",
        "one 200 kB line of letters": b"q" * 200_000, "a BOM and CRs": b"\xef\xbb\xbfthe cat\r\nsat.\r",
    }
    for label, data in contents.items():
        path = root / (label.replace(" ", "-") + ".txt")
        path.write_bytes(data)
        files[label] = path
    files["a folder"] = root
    files["a missing file"] = root / "missing.txt"
    out = []
    for label, path in files.items():
        out.append(Variant("text inputs (`ngram perplexity`, `transformer perplexity`)", f"ngram: {label}", "ngram",
                           ["perplexity", str(o.ngram_folder), str(path), "--smoothing", "kn", "--no-progress", "--json"],
                           sane_perplexity))
    for label in ("a named pipe", "/dev/zero", "invalid UTF-8", "empty"):
        if label in files:
            out.append(Variant("text inputs (`ngram perplexity`, `transformer perplexity`)", f"transformer: {label}",
                               "transformer", ["perplexity", str(files[label]), "--model", str(o.gpt2), "--json"],
                               sane_transformer_perplexity))
    return out


# ----------------------------------------------------------------- sane output


def finite_numbers(value: Any) -> bool:
    """Every number in a decoded JSON value is finite (echo_json prints no NaN; belt and braces)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    return True


def is_probability(p: Any) -> bool:
    return isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p <= 1.0


def sane_transformer(out: Any) -> bool:
    """Probabilities in [0, 1], summing to at most 1, for valid token ids."""
    rows = out["next"]
    return (bool(rows) and all(is_probability(r["probability"]) for r in rows)
            and sum(r["probability"] for r in rows) <= 1.0 + 1e-4 and all(isinstance(r["id"], int) for r in rows))


def sane_tokenize(out: Any) -> bool:
    return bool(out["ids"]) and all(isinstance(i, int) and i >= 0 for i in out["ids"])


def sane_ngram_prediction(out: Any) -> bool:
    """Candidate probabilities in [0, 1] summing to at most 1; counts whole numbers >= 0."""
    candidates = out["candidates"]
    total = sum(c["probability"] for c in candidates) + out["end_of_sentence"] + out["unknown_word"]
    return (all(is_probability(c["probability"]) and isinstance(c["count"], int) and c["count"] >= 0 for c in candidates)
            and is_probability(out["end_of_sentence"]) and is_probability(out["unknown_word"])
            and total <= 1.0 + 1e-6 and isinstance(out["context_count"], int) and out["context_count"] >= 0)


def sane_perplexity(out: Any) -> bool:
    """Kneser-Ney never gives a zero probability: the perplexity is a finite number >= 1."""
    return all(isinstance(r["per_token"], (int, float)) and r["per_token"] >= 1.0 and r["nll"] >= 0
               for r in out["results"])


def sane_transformer_perplexity(out: Any) -> bool:
    per_token = out.get("per_token", out.get("score", {}).get("per_token") if isinstance(out.get("score"), dict) else None)
    return per_token is None or (isinstance(per_token, (int, float)) and per_token >= 1.0)


def sane_arpa(out: Any) -> bool:
    """What read_arpa returned: an order >= 1 and finite log10 probabilities <= 0."""
    return out["order"] >= 1 and all(lp <= 0 and math.isfinite(lp) and math.isfinite(bo) for lp, bo in out["values"])


def verdict(exit_code: int | None, stdout: str, stderr: str, escaped: bool, check: Callable[[Any], bool]) -> str:
    """Classify one run (see the module docstring). `exit_code` None means it hung."""
    if exit_code is None:
        return "hang"
    if escaped or "Traceback" in stderr:
        return "traceback"
    if exit_code != 0:
        errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
        return "clean error" if len(errors) == 1 and len(errors[0]) <= 300 else "traceback"
    try:
        return "ok" if finite_numbers(parsed := json.loads(stdout)) and check(parsed) else "bad output"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "bad output"


def run_arpa(path: str) -> dict:
    """read_arpa's result as JSON-able figures, for the checker (the ARPA 'command')."""
    from ngram.arpa import read_arpa

    order, tables = read_arpa(path)
    return {"order": order, "values": [v for table in tables for v in table.values() if v[0] > -99]}


# ----------------------------------------------------------------------- running


def arpa_command():
    """A click command around `run_arpa`, with the tools' error handling: what an
    `ngram` command reading ARPA would do (one `Error:` line, or JSON on stdout)."""
    import click

    from corpora.cli_common import echo_json, friendly_errors

    @click.command()
    @click.argument("path")
    @friendly_errors
    def arpa_main(path: str) -> None:
        echo_json(run_arpa(path))

    return arpa_main


def tool_main(tool: str):
    """The click entry point of a tool."""
    if tool == "ngram":
        from ngram.cli import main
    elif tool == "transformer":
        from transformer.cli import main
    else:
        main = arpa_command()
    return main


class Hung(BaseException):
    """Raised by the alarm when an in-process run takes too long (not an Exception, so no
    `except Exception` in the code under test can swallow it)."""


def run_in_process(variant: Variant, limit: float) -> tuple[str, str]:
    """(verdict, stderr) of one variant run through click's CliRunner, with an alarm at `limit` seconds."""
    import signal

    from click.testing import CliRunner

    def alarm(signum, frame):
        raise Hung()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        result = CliRunner().invoke(tool_main(variant.tool), variant.args, catch_exceptions=True)
    except Hung:
        return "hang", ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    stderr = result.stderr
    if escaped:
        stderr += f"\nTraceback (escaped): {type(result.exception).__name__}: {str(result.exception)[:200]}"
    return verdict(result.exit_code, result.stdout, stderr, escaped, variant.check), stderr


SUBPROCESS_CODE = {
    "ngram": "import sys; sys.argv[0] = 'ngram'; from ngram.cli import main; main()",
    "transformer": "import sys; sys.argv[0] = 'transformer'; from transformer.cli import main; main()",
    "arpa": "import sys; sys.argv[0] = 'read-arpa'; from hostile import arpa_command; arpa_command()()",
}


def run_subprocess(variant: Variant, limit: float, root: Path) -> tuple[str, str]:
    """(verdict, stderr) of one variant run as its own process, killed after `limit` seconds."""
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(
        [str(root), str(root / "tests"), os.environ.get("PYTHONPATH", "")]))
    try:
        done = subprocess.run([sys.executable, "-c", SUBPROCESS_CODE[variant.tool], *variant.args],
                              capture_output=True, text=True, timeout=limit, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "hang", ""
    return verdict(done.returncode, done.stdout, done.stderr, False, variant.check), done.stderr
