"""What the three command-line tools share: one-line errors, warnings as plain lines, JSON output.

Only the CLIs import this module (it imports click); the model packages never do.
"""
from __future__ import annotations

import functools
import json
import math
import sys
import warnings
from typing import Any, Callable

import click

from .common import UserError
from .validate import MAX_LINE, cap_line


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command so user mistakes print one line and exit non-zero.

    UserError, missing files, permission problems and running out of memory become
    `Error: ...` (exit 1), one line of at most MAX_LINE characters however long the
    message (a quoted 1 MB line from a hostile file is cut with "…"); Ctrl-C becomes
    `Interrupted.` (exit 130). Bugs still show a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except UserError as err:
            _echo_error(str(err))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            name = getattr(err, "filename", None)
            reason = err.strerror or type(err).__name__
            _echo_error(f"{reason}: {name}" if name else str(err))
        except MemoryError:
            _echo_error("out of memory: the input or the model is too large for this machine")
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing was written.", err=True)
            sys.exit(130)

    return wrapper


def _echo_error(message: str) -> None:
    """The one `Error: ...` line (capped in length) on stderr, then exit 1."""
    click.echo(cap_line(f"Error: {message}", MAX_LINE), err=True)
    sys.exit(1)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """Warnings as one plain line on stderr (no source file, no line number)."""
    click.echo(cap_line(f"Warning: {message}", MAX_LINE), err=True)


def echo_json(data: Any) -> None:
    """Print `data` as JSON for scripts: always valid JSON, never a bare NaN or Infinity.

    An infinity is a legitimate figure (the perplexity of a text with a zero-probability
    token) and is printed as null, the convention of `Score.to_dict`. A NaN is never a
    result, only a symptom of damaged weights or settings: it is refused as an error.
    """
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: the slow walk only then
        text = json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False)
    click.echo(text)


def json_safe(data: Any, where: str = "result") -> Any:
    """`data` with every ±inf float replaced by None; a NaN raises a UserError naming its key.

    Example: json_safe({"ppl": float("inf"), "n": [1.0]}) == {"ppl": None, "n": [1.0]}
    """
    if isinstance(data, float):
        if math.isnan(data):
            raise UserError(f"the {where} is NaN (not a number); the model's weights or settings are damaged")
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value, str(key)) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value, where) for value in data]
    return data


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
