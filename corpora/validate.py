"""Checks for everything the tools read from disk: one small, named check per idea.

A model file, a tokenizer file or a text file can be damaged, truncated or written by
someone hostile. Every reader in the toolkit runs what it reads through these checks
*before* it allocates or computes anything, so a bad file becomes one `Error: ...` line
(a `UserError`) and never a traceback, a hang, a huge allocation or a NaN result.

- files: `regular_file` (no pipes or devices, a size limit), `read_limited_bytes`
- JSON: `json_with_depth_limit`, `read_json_file` (no NaN/Infinity, bounded nesting)
- numbers: `check_int`, `check_positive_float`, `check_finite_array`, `check_finite_values`
- memory: `available_memory_bytes`, `check_fits_in_memory`
- safetensors: `safetensors_header` -> a list of checked `TensorEntry`
- messages: `cap_line` (error lines of readable length)

Nothing here imports click or a model package: the model packages and the CLIs use it.
"""
from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import numpy as np

from .common import UserError

#: How long one error line may be: enough for a path and a reason, short enough to read.
MAX_LINE = 300

#: Nesting deeper than this is refused in every JSON file we read (real files nest 2-4 deep).
MAX_JSON_DEPTH = 64

#: Default cap for a JSON file read whole (vocab.json of GPT-2 is 1 MB; configs are tiny).
MAX_JSON_BYTES = 256 * 1024 * 1024

#: Default cap for a text file read whole (`--max-bytes` changes it where offered).
MAX_TEXT_BYTES = 1024 * 1024 * 1024

#: A safetensors header longer than this is refused (GPT-2 XL's is ~ 60 kB).
MAX_SAFETENSORS_HEADER = 100_000_000

#: Bytes per element of the safetensors dtypes we can read (all floats widen to float32).
SAFETENSORS_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}

#: Every dtype safetensors defines, so an unknown string is told apart from a known but unread one.
KNOWN_SAFETENSORS_DTYPES = {"BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "I16", "U16", "F16", "BF16",
                            "I32", "U32", "F32", "F64", "I64", "U64"}


# ----------------------------------------------------------------------------- messages


def cap_line(message: str, limit: int = MAX_LINE) -> str:
    """`message` as one line of at most `limit` characters, cut with "…" if longer.

    A merges line of 1 MB quoted in an error would otherwise print 1 MB to the terminal;
    newlines inside a quoted value would break the "one line" promise.

    Example: cap_line("a\\nbc" + "c" * 500, 10) == "a bcccccc…"
    """
    line = " ".join(str(message).splitlines())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value) for an error message, cut to `limit` characters (huge values stay readable)."""
    if isinstance(value, int) and abs(value) >= 10**40:  # str() of a 5,000-digit int raises
        return f"a number of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    text = repr(value)
    return cap_line(text, limit)


# -------------------------------------------------------------------------------- files


def regular_file(path: str | os.PathLike, max_bytes: int | None = None, what: str = "file") -> int:
    """Size in bytes of `path`, refusing what must never be read whole.

    A named pipe would block forever, `/dev/zero` never ends and `/dev/random` fills
    memory: only regular files are read. A file larger than `max_bytes` is refused
    with both sizes in the message (the caller says how to raise the limit).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror or type(err).__name__}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path} is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path} is not a regular file ({special_kind(info.st_mode)}); refusing to read it")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UserError(f"{path} is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes for a {what}")
    return info.st_size


def special_kind(mode: int) -> str:
    """A person's name for a non-regular file type (for the error line)."""
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def read_limited_bytes(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `max_bytes` (checked before reading, and while:
    a file that grows between the check and the read is still cut off at the limit)."""
    regular_file(path, max_bytes, what)
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UserError(f"{path} grew past the limit of {max_bytes:,} bytes while being read")
    return data


# --------------------------------------------------------------------------------- JSON


def _refuse_constant(name: str) -> None:
    """json's hook for NaN, Infinity and -Infinity, which are not JSON: refuse them."""
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json's hook for each object: refuse a key given twice (json would keep the last silently,
    so two tensors, or two tokens, could hide behind one name)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {cap_line(repr(twice), 80)} appears twice in one object")
    return result


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded JSON value (a scalar is depth 0).

    Iterative, so a deep value cannot exhaust Python's stack while being measured.
    """
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def json_with_depth_limit(text: str | bytes, max_depth: int = MAX_JSON_DEPTH, where: str = "JSON") -> Any:
    """Decode JSON text, refusing what a hostile file could use to crash or mislead us.

    Refused, each as a one-line UserError naming `where`: invalid JSON, bytes that are
    not UTF-8, nesting deeper than `max_depth` (a 100,000-deep file would otherwise
    raise RecursionError), NaN/Infinity (not JSON; they would pass as numbers),
    integers too long to convert and a key repeated in one object.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply (more than {max_depth} levels)") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except UnicodeDecodeError:
        raise UserError(f"{where} is not UTF-8 text") from None
    except ValueError as err:  # NaN/Infinity, or an integer of thousands of digits
        raise UserError(cap_line(f"{where} is not valid JSON: {err}")) from None
    if json_depth(value) > max_depth:
        raise UserError(f"{where}: JSON nested too deeply (more than {max_depth} levels)")
    return value


def read_json_file(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH,
                   what: str = "JSON file") -> Any:
    """A JSON file read safely: a regular file under `max_bytes`, decoded by `json_with_depth_limit`."""
    return json_with_depth_limit(read_limited_bytes(path, max_bytes, what), max_depth, str(path))


# ------------------------------------------------------------------------------ numbers


def is_int(value: Any) -> bool:
    """True for a real integer, Python's or NumPy's (JSON's `true` decodes to a bool, which
    Python counts as an int: refused)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value: Any, lo: int, hi: int, where: str = "") -> int:
    """`value` if it is an integer in [lo, hi]; otherwise a UserError naming the field.

    Floats are refused, not rounded: `n_layer: 2.9` is a damaged file, not 2 layers.
    """
    prefix = f"{where}: " if where else ""
    if not is_int(value):
        raise UserError(f"{prefix}{name} must be a whole number, got {short_repr(value)}")
    if not lo <= value <= hi:
        raise UserError(f"{prefix}{name} must be between {lo:,} and {hi:,}, got {short_repr(value)}")
    return value


def check_positive_float(name: str, value: Any, hi: float, where: str = "") -> float:
    """`value` as a float if it is a finite number in (0, hi]; otherwise a UserError."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{prefix}{name} must be a number, got {short_repr(value)}")
    number = float(value) if not isinstance(value, int) or abs(value) < 10**300 else math.inf
    if not math.isfinite(number) or not 0 < number <= hi:
        raise UserError(f"{prefix}{name} must be a finite number above 0 and at most {hi}, got {short_repr(value)}")
    return number


def check_finite_array(array: np.ndarray, name: str, where: str = "") -> None:
    """Refuse an array holding NaN or ±inf, naming it and counting the bad values.

    One vectorised pass with no large temporary: the float64 sum of finite float32
    values cannot overflow, so it is finite exactly when every value is. Only a bad
    array pays for a second pass that counts.
    """
    if array.size == 0 or np.isfinite(np.add.reduce(array, axis=None, dtype=np.float64)):
        return
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    prefix = f"{where}: " if where else ""
    raise UserError(f"{prefix}{name} holds {bad:,} NaN or infinite values; the file is damaged")


def check_finite_values(values: Iterable[float], step: str) -> None:
    """Refuse results that are not numbers (NaN, ±inf) before they are printed as results."""
    for value in values:
        if not math.isfinite(value):
            raise UserError(f"{step} gave {value} instead of a number; the model's weights or settings are damaged")


# ------------------------------------------------------------------------------- memory


def available_memory_bytes() -> int:
    """The machine's physical memory in bytes (a generous bound on what we may allocate)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a large machine
        return 1 << 46


def check_fits_in_memory(nbytes: int, what: str) -> None:
    """Refuse up front a size the machine cannot hold, with both numbers in the message."""
    have = available_memory_bytes()
    if nbytes > have:
        raise UserError(f"{what} would need {nbytes:,} bytes of memory; this machine has {have:,}")


# -------------------------------------------------------------------------- safetensors


class TensorEntry(NamedTuple):
    """One checked entry of a safetensors header; `begin`/`end` are offsets into the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def safetensors_header(path: str | os.PathLike) -> tuple[list[TensorEntry], int]:
    """Read and check a safetensors header: (entries sorted by offset, where the data starts).

    The file is an 8-byte little-endian header length, a JSON object (name -> dtype,
    shape, data_offsets; plus an optional `__metadata__`) and the tensor bytes. Every
    number is checked as a Python int (no overflow) before any array is made: the
    header fits the file, every entry is well-formed, its byte range matches dtype ×
    shape and lies in the data section, and no two ranges overlap.
    """
    path = Path(path)
    size = regular_file(path, what="safetensors file")
    with open(path, "rb") as handle:
        first = handle.read(8)
        if len(first) < 8:
            raise UserError(f"{path} is not a safetensors file (it is only {size} bytes)")
        (header_len,) = struct.unpack("<Q", first)
        if header_len < 2 or header_len > size - 8 or header_len > MAX_SAFETENSORS_HEADER:
            raise UserError(f"{path} is truncated or not a safetensors file (header length {header_len:,} "
                            f"in a file of {size:,} bytes)")
        raw = handle.read(header_len)
    header = json_with_depth_limit(raw, 8, f"{path} (safetensors header)")
    if not isinstance(header, dict):
        raise UserError(f"{path} is not a safetensors file (header is not a JSON object)")
    header.pop("__metadata__", None)
    data_size = size - 8 - header_len
    entries = sorted((tensor_entry(name, info, path) for name, info in header.items()), key=lambda e: (e.begin, e.end))
    check_ranges(entries, data_size, path)
    return entries, 8 + header_len


def tensor_entry(name: str, info: Any, path: Path) -> TensorEntry:
    """One header entry, checked for type: a dict with a known dtype string, a shape of
    non-negative ints (not bools) and two int offsets, begin <= end, size = dtype × shape."""
    where = f"{path}: tensor {cap_line(repr(name), 80)}"
    if not isinstance(info, dict):
        raise UserError(f"{where} has a malformed header entry (not an object)")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in KNOWN_SAFETENSORS_DTYPES:
        raise UserError(f"{where} has an unknown dtype {short_repr(dtype)}")
    if dtype not in SAFETENSORS_DTYPES:
        raise UserError(f"{where} has dtype {dtype}; expected F32, F16 or BF16")
    if not isinstance(shape, list) or len(shape) > 8 or not all(is_int(d) and d >= 0 for d in shape):
        raise UserError(f"{where} has a malformed shape {short_repr(shape)} (a list of non-negative whole numbers)")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise UserError(f"{where} has malformed data_offsets {short_repr(offsets)} (two whole numbers, begin <= end)")
    begin, end = offsets
    if end - begin != SAFETENSORS_DTYPES[dtype] * math.prod(shape):
        raise UserError(f"{where}: byte range does not match its shape {short_repr(shape)} and dtype {dtype}")
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def check_ranges(entries: list[TensorEntry], data_size: int, path: Path) -> None:
    """Entries sorted by offset: each must end inside the data and start after the previous one ends."""
    previous: TensorEntry | None = None
    for entry in entries:
        if entry.end > data_size:
            raise UserError(
                f"{path} is truncated: tensor {cap_line(repr(entry.name), 80)} needs bytes up to "
                f"{short_repr(entry.end)} of the data, but the file holds {data_size:,}"
            )
        if previous is not None and entry.begin < previous.end and entry.end > entry.begin:
            raise UserError(f"{path}: tensors {cap_line(repr(previous.name), 80)} and "
                            f"{cap_line(repr(entry.name), 80)} overlap in the file")
        if entry.end > entry.begin:
            previous = entry
