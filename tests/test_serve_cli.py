"""`bench serve`'s command line and loading: refused options, a taken port, a model that fails to load."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
from bench.cli import main  # noqa: E402
from bench.serve.running import is_loopback, load_models, page_url  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"


def test_help_has_an_example():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "bench serve --port 8080" in result.output


def test_a_taken_port_is_one_line_error():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--transformer", str(FIXTURE)])
    finally:
        taken.close()
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port}") and result.output.count("\n") == 1


def test_a_missing_ngram_file_is_refused_before_loading(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--ngram", str(tmp_path / "nothing.json.gz")])
    assert result.exit_code == 1 and "no such model" in result.output


def test_a_model_that_fails_to_load_is_reported_not_fatal(tmp_path):
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    ngram, transformer, problems = load_models(broken, str(FIXTURE), progress=False)
    assert ngram is None and transformer is not None
    assert set(problems) == {"ngram"} and problems["ngram"] and "\n" not in problems["ngram"]


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.org", False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_page_url():
    assert page_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert page_url("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert page_url("::1", 8000) == "http://[::1]:8000/"


def test_require_or_skip_fails_only_when_everything_is_required(monkeypatch):
    from conftest import require_or_skip

    monkeypatch.delenv("TTT_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        require_or_skip("chromium not found")
    monkeypatch.setenv("TTT_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="TTT_REQUIRE_ALL=1 but chromium not found"):
        require_or_skip("chromium not found")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def served(monkeypatch):
    """`bench serve` up to the point where it would serve; what it would have served."""
    from bench.serve import running

    calls = []
    monkeypatch.setattr(running, "serve", lambda app, sock, url=None: (calls.append((app, url)), sock.close()))
    monkeypatch.setattr(running, "set_threads", lambda n: calls.append(("threads", n)))  # not this test process's BLAS
    return calls


@pytest.fixture()
def tiny_ngram(tmp_path) -> Path:
    from ngram import NgramModel, save_model

    model = NgramModel.from_sentences([["I", "want", "to", "be"]], order=2, min_count=1)
    return save_model(model, tmp_path / "tiny.json.gz")


def test_serve_json_says_where_and_what(served, tiny_ngram):
    import json

    port = free_port()
    result = CliRunner().invoke(main, ["serve", "--port", str(port), "--ngram", str(tiny_ngram), "--transformer", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["url"] == f"http://127.0.0.1:{port}/" and body["ngram"]["order"] == 2
    assert body["transformer"]["available"] and body["transformer"]["layers"] == 2
    assert served[0] == ("threads", 1)  # one BLAS thread unless --threads says otherwise
    assert len(served) == 2 and served[1][1] is None  # no --open: no browser


def test_serve_warns_off_loopback(served, tiny_ngram):
    port = free_port()
    args = ["serve", "--port", str(port), "--ngram", str(tiny_ngram), "--transformer", str(FIXTURE)]
    quiet = CliRunner().invoke(main, args)
    assert quiet.exit_code == 0 and "other machines" not in quiet.stderr
    assert quiet.stdout == f"The classroom page is at http://127.0.0.1:{port}/ (Ctrl-C stops the server).\n"
    loud = CliRunner().invoke(main, [*args, "--host", "0.0.0.0"])
    assert loud.exit_code == 0, loud.output
    assert "Notice: --host 0.0.0.0: other machines can reach this page" in loud.stderr
