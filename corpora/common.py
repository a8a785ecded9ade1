"""Small helpers every package shares: user errors, atomic writes, the cache folder.

`ngram`, `transformer` and `bench` all read text through `corpora`, so the few
helpers they all need live here rather than in a fourth package.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


class UserError(Exception):
    """A mistake in what the user asked for (bad path, bad option, bad file).

    The command-line tools print these as one line, with no traceback, and exit non-zero.
    """


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside `path`; on success it replaces `path` in one step.

    If anything fails (an exception, Ctrl-C) the temporary file is removed and
    whatever was at `path` before is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a saved file should be like any other
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if encoding is None else "\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask



def cache_dir() -> Path:
    """Where default models live: $XDG_CACHE_HOME/trie-vs-transformer (or ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "trie-vs-transformer"
