"""What the three command-line tools share: one-line errors, warnings as plain lines, JSON output.

Only the CLIs import this module (it imports click); the model packages never do.
"""
from __future__ import annotations

import functools
import json
import sys
import warnings
from typing import Any, Callable

import click

from .common import UserError


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


def version_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--version` for a tool's top-level group: the toolkit's installed version."""
    return click.version_option(package_name="trie-vs-transformer", message="%(prog)s %(version)s")(func)


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 document', '2 documents', '1,024 words' (`many` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def elide(text: str, limit: int = 120) -> str:
    """Text for one line of output: at most `limit` characters, the middle cut out.

    'It was the best of times, it was … the age of foolishness' — the start and the end
    stay, since the end is what a next-word prediction depends on.
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    keep = limit - len(" … ")
    head = keep // 3
    return f"{text[:head].rstrip()} … {text[len(text) - (keep - head):].lstrip()}"
