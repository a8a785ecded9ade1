"""Loading both models for the server, and running it.

A model that fails to load does not stop the server: the page says which model is
missing and why, and the other one keeps answering.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser
from pathlib import Path

from corpora import UserError

from .. import models as bench_models

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def load_models(ngram_path: Path | None, transformer_name: str, progress: bool = True) -> tuple:
    """(n-gram or None, transformer or None, {model: why it did not load})."""
    problems: dict[str, str] = {}
    ngram = transformer = None
    try:
        ngram = bench_models.ngram_model(ngram_path, progress=progress)
    except Exception as err:  # any failure: the page must still come up with the other model
        problems["ngram"] = failure_text(err)
    try:
        transformer = bench_models.transformer_model(transformer_name)
    except Exception as err:
        problems["transformer"] = failure_text(err).replace("--model", "--transformer")
    return ngram, transformer, problems


def status(app) -> dict:
    """The app's models, loaded or not and why (what /api/status answers)."""
    from .answers import status_answer

    return status_answer(app.state.models)


def failure_text(err: Exception) -> str:
    """An exception as one line: a user mistake as it is, anything else with its kind."""
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"


def set_threads(n: int) -> None:
    """BLAS threads for the server's matrix products. One by default: the server answers
    one question at a time, each a few small matrix products, and on a machine whose cores
    are busy two BLAS threads wait on each other at every product (a keystroke took 4-5x
    longer with two than with one on a loaded 2-core machine)."""
    from corpora.runtime import set_blas_threads

    set_blas_threads(n)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: only this machine can reach the page."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int) -> str:
    """The address to open: a wildcard host is reached at 127.0.0.1; IPv6 in brackets."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error (port taken, unknown host)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err} (try another --port)") from None
    return sock


def serve(app, sock: socket.socket, open_browser_at: str | None = None) -> None:
    """Run the app on an already bound socket until Ctrl-C; open a browser tab if asked."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", limit_concurrency=64, timeout_keep_alive=5)
    server = uvicorn.Server(config)
    if open_browser_at:
        threading.Timer(0.5, webbrowser.open, args=(open_browser_at,)).start()
    server.run(sockets=[sock])
