"""Small helpers every package shares: user errors, atomic writes, CLI error handling.

`ngram`, `transformer` and `bench` all read text through `corpora`, so the few
helpers they all need live here rather than in a fourth package.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import click


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


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as pretty JSON to `path` atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def cache_dir() -> Path:
    """Where default models live: $XDG_CACHE_HOME/trie-vs-transformer (or ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "trie-vs-transformer"


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command so user mistakes print one line and exit non-zero.

    UserError, missing files and permission problems become `Error: ...` (exit 1);
    Ctrl-C becomes `Interrupted.` (exit 130). Bugs still show a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except UserError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            name = getattr(err, "filename", None)
            reason = err.strerror or type(err).__name__
            click.echo(f"Error: {reason}: {name}" if name else f"Error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing was written.", err=True)
            sys.exit(130)

    return wrapper


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """Warnings as one plain line on stderr (no source file, no line number)."""
    click.echo(f"Warning: {message}", err=True)


def echo_json(data: Any) -> None:
    """Print `data` as JSON for scripts."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
