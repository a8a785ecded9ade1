"""The classroom page's JSON API (`bench serve`), through FastAPI's test client, on tiny models.

The API must answer what the CLI's --json answers, in the same shape; every bad request
must get a one-line JSON error with a 4xx status; text is data, never markup.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from bench import models  # noqa: E402
from bench.cli import main as bench_main  # noqa: E402
from bench.serve import create_app  # noqa: E402
from bench.serve.answers import ATTENTION_POSITIONS, MAX_PROMPT_CHARS  # noqa: E402
from ngram import NgramModel, save_model  # noqa: E402
from ngram.cli import main as ngram_main  # noqa: E402
from transformer.cli import main as transformer_main  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"

BOOK = """I want to be a doctor. I want to know the truth. You want to be free.
The cat sat on the mat. The cat was black. It was the best of times, it was the worst of times.
"""
PROMPT = "I want to"


@pytest.fixture(scope="module")
def ngram_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 4, encoding="utf-8")
    model = NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.0, progress=False)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny.json.gz")


@pytest.fixture(scope="module")
def ngram(ngram_file) -> NgramModel:
    return models.ngram_model(ngram_file)


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


@pytest.fixture(scope="module")
def client(ngram, gpt) -> TestClient:
    return TestClient(create_app(ngram, gpt))


def cli_json(main, *args) -> dict:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def without(data, keys=("seconds",)):
    """`data` with the run-dependent timings removed, at every depth."""
    if isinstance(data, dict):
        return {k: without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [without(v, keys) for v in data]
    return data


# ------------------------------------------------------------- same as the CLI


def test_compare_is_bench_compare_json(client, ngram_file):
    api = client.get("/api/compare", params={"prompt": PROMPT, "k": 3, "budget": 8})
    assert api.status_code == 200
    cli = cli_json(bench_main, "compare", PROMPT, "-k", 3, "--budget", 8, "--ngram", ngram_file, "--transformer", FIXTURE, "--json")
    assert without(api.json()) == without(cli)
    body = api.json()
    assert body["ngram"]["words"][0]["word"] == "be"  # "want to be" twice, "want to know" once
    assert body["ngram"]["matched_context"] == ["want", "to"] and body["ngram"]["matched_order"] == 3
    assert len(body["transformer"]["words"]) == 3 and 0 < body["transformer"]["covered"] <= 1


def test_compare_without_continuations(client):
    """The page asks for no greedy continuation (the slowest part): the same words, nulls there."""
    full = client.get("/api/compare", params={"prompt": PROMPT, "k": 3, "budget": 8}).json()
    quick = client.get("/api/compare", params={"prompt": PROMPT, "k": 3, "budget": 8, "continuation": "false"}).json()
    assert quick["ngram"]["continuation"] is None and quick["transformer"]["continuation"] is None
    assert full["ngram"]["continuation"] and full["transformer"]["continuation"] is not None
    assert without(quick, ("seconds", "continuation")) == without(full, ("seconds", "continuation"))


def test_trie_is_ngram_show_json(client, ngram_file):
    api = client.get("/api/trie", params={"context": "want", "depth": 2, "top": 1})
    assert api.status_code == 200
    cli = cli_json(ngram_main, "show", ngram_file, "want", "--depth", 2, "--top", 1, "--json")
    assert api.json() == cli
    want = api.json()["tree"]["children"][0]
    assert (want["token"], want["count"]) == ("want", 12)  # three times in each of the four copies
    assert want["children"][0]["token"] == "to" and want["children"][0]["children"][0] == {
        "token": "be", "count": 8, "continuation": None, "children": [], "more": 0}


def test_trie_takes_the_models_tokens(client):
    """The page asks for the matched context as tokens, <s> included, as compare gives it."""
    body = client.get("/api/trie", params=[("token", "<s>"), ("token", "I"), ("depth", 1)]).json()
    assert body["context"] == ["<s>", "I"]
    assert body["tree"]["children"][0]["children"][0]["children"][0]["token"] == "want"


def test_inspect_is_transformer_inspect_json(client):
    api = client.get("/api/inspect", params={"prompt": PROMPT, "k": 3})
    assert api.status_code == 200
    cli = cli_json(transformer_main, "inspect", PROMPT, "--model", FIXTURE, "-k", 3, "--json")
    body = api.json()
    for key in ("prompt", "model", "tokenizer", "tokens", "next", "logit_lens", "attention"):
        assert body[key] == cli[key], key
    assert len(body["logit_lens"]) == 3  # embeddings + 2 layers
    weights = body["attention_weights"]["weights"]
    n = len(body["tokens"])
    assert (len(weights), len(weights[0]), len(weights[0][0]), len(weights[0][0][0])) == (2, 4, n, n)
    assert all(abs(sum(row) - 1) < 1e-3 for row in weights[1][3])  # each query's weights sum to 1
    assert weights[0][0][0][1:] == [0.0] * (n - 1)  # causal: the first token sees only itself


def test_inspect_one_head_and_long_prompt(client):
    body = client.get("/api/inspect", params={"prompt": "the cat " * 80, "layer": 1, "head": 2}).json()
    attention = body["attention_weights"]
    assert (attention["layer"], attention["head"]) == (1, 2)
    assert attention["positions"] == ATTENTION_POSITIONS == len(attention["weights"]) == len(attention["weights"][0])
    assert attention["first_position"] == len(body["tokens"]) - ATTENTION_POSITIONS


# ----------------------------------------------------------------- generation


def test_step_adds_one_word_to_each_and_repeats_with_the_seed(client):
    ask = {"ngram": PROMPT, "transformer": PROMPT, "temperature": 1.0, "top_k": 5, "seed": 3}
    first = client.post("/api/step", json=ask).json()
    assert first == client.post("/api/step", json=ask).json()
    n, t = first["ngram"], first["transformer"]
    assert len(n["tokens"]) == 1 and n["text"] == PROMPT + " " + n["added"]
    assert t["text"] == PROMPT + t["added"] and 1 <= len(t["ids"]) <= 8
    assert not any(piece[:1].isspace() for piece in t["tokens"][1:])  # one word: only its first piece starts with a space


def test_step_greedy_follows_the_counts(client):
    body = client.post("/api/step", json={"ngram": PROMPT, "temperature": 0}).json()
    assert body["ngram"]["added"] == "be" and body["transformer"] is None


def test_step_past_a_sentence_end_starts_the_next_sentence(client):
    """After "The cat was black ." the n-gram ends the sentence; the step brings the next word."""
    body = client.post("/api/step", json={"ngram": "The cat was black.", "temperature": 0}).json()
    assert body["ngram"]["tokens"][0] == "</s>" and len(body["ngram"]["tokens"]) == 2
    assert body["ngram"]["added"] and body["ngram"]["text"].startswith("The cat was black. ")


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("path, status", [
    ("/api/nothing", 404),
    ("/nothing/at/all", 404),
    ("/api/compare", 422),  # no prompt
    ("/api/compare?prompt=I&k=0", 422),
    ("/api/compare?prompt=I&k=many", 422),
    ("/api/compare?prompt=%20%20", 422),  # only spaces
    ("/api/trie?context=zebra", 422),  # never occurred
    ("/api/trie?context=I&depth=-1", 422),
    ("/api/trie?context=I&token=I", 422),
    ("/api/inspect?prompt=I&layer=7&head=0", 422),
    ("/api/inspect?prompt=I&layer=1", 422),
    ("/api/report/files/..%2F..%2Fetc%2Fpasswd", 404),
])
def test_bad_requests_get_json_errors(client, path, status):
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"]


def test_bad_step_bodies(client):
    assert client.post("/api/step", json={"ngram": "I", "temperature": -1}).status_code == 422
    assert client.post("/api/step", json={}).status_code == 422
    assert client.post("/api/step", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert client.get("/api/step").status_code == 405


def test_size_limits(client):
    long = "a" * (MAX_PROMPT_CHARS + 1)
    response = client.get("/api/compare", params={"prompt": long})
    assert response.status_code == 413 and "characters" in response.json()["error"]
    huge = client.post("/api/step", content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert client.post("/api/step", json={"ngram": long}).status_code == 422


def test_any_unicode_and_markup_is_text(client):
    """A prompt with HTML comes back as the same characters, in JSON, never as markup."""
    attack = "<img src=x onerror=alert(1)>"
    response = client.get("/api/compare", params={"prompt": attack + " I want to", "budget": 0})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json()["prompt"] == attack + " I want to"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for prompt in ["naïve café 😀 ∑ 漢字", "😀", "\u200b\u0301"]:
        inspect = client.get("/api/inspect", params={"prompt": prompt})
        assert inspect.status_code == 200
        compare = client.get("/api/compare", params={"prompt": prompt, "budget": 0})
        assert compare.status_code in (200, 422), compare.text  # 422: nothing the n-gram can read, said in one line


def test_twenty_requests_at_once_all_answer_the_same(client):
    """Requests run in a thread pool: at once they get what they get one by one."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [f"/api/inspect?prompt=the+cat+{i % 4}" if i % 2 else f"/api/trie?context=The+cat&top={1 + i % 3}" for i in range(20)]
    alone = {path: client.get(path).json() for path in set(paths)}
    with ThreadPoolExecutor(20) as pool:
        together = list(pool.map(client.get, paths))
    assert [r.status_code for r in together] == [200] * 20
    assert all(r.json() == alone[path] for r, path in zip(together, paths))


# ------------------------------------------------- what a keystroke's speed rests on


def test_example_search_skips_a_top_word_never_seen_after_the_context(ngram, monkeypatch):
    """A top word the counts never saw after the matched context is not searched for after it
    in the books (that search reads every book and fails; it was most of a slow keystroke)."""
    from ngram import predict
    from ngram.predict import Candidate, example_for

    searched = []
    real = predict.example_sentence
    monkeypatch.setattr(predict, "example_sentence", lambda m, c, t=None: searched.append(t) or real(m, c, t))
    unseen = Candidate("cat", count=3, probability=0.5, order=1)  # seen only as a unigram
    assert example_for(ngram, ["want", "to"], [unseen]) == ("I want to be a doctor.", None)
    assert searched == [None]  # the context alone
    seen = Candidate("know", count=4, probability=0.3, order=3)  # followed "want to" 4 times
    assert example_for(ngram, ["want", "to"], [seen]) == ("I want to know the truth.", None)
    assert searched == [None, "know"]


# ------------------------------------------------------- a model that did not load


def test_a_missing_model_leaves_the_other_serving(ngram):
    client = TestClient(create_app(ngram, None, problems={"transformer": "no such folder: nowhere"}))
    status = client.get("/api/status").json()
    assert status["ngram"]["available"] and not status["transformer"]["available"]
    assert status["transformer"]["problem"] == "no such folder: nowhere"
    body = client.get("/api/compare", params={"prompt": PROMPT}).json()
    assert body["transformer"] is None and body["ngram"]["words"][0]["word"] == "be"
    inspect = client.get("/api/inspect", params={"prompt": PROMPT})
    assert inspect.status_code == 503 and "no such folder: nowhere" in inspect.json()["error"]
    assert client.get("/").status_code == 200


# ---------------------------------------------------------------- page, report


def test_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another site: works offline


def test_report(ngram, gpt, tmp_path):
    missing = TestClient(create_app(ngram, gpt, report_folder=tmp_path / "none")).get("/api/report").json()
    assert missing["available"] is False and "bench report" in missing["hint"]
    (tmp_path / "report.json").write_text('{"prompts": ["I want to"]}', encoding="utf-8")
    (tmp_path / "report.md").write_text("# Report\n", encoding="utf-8")
    (tmp_path / "next_word.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    client = TestClient(create_app(ngram, gpt, report_folder=tmp_path))
    body = client.get("/api/report").json()
    assert body["available"] and body["report"] == {"prompts": ["I want to"]} and body["plots"] == ["next_word.png"]
    assert client.get("/api/report/files/next_word.png").content == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/report/files/secret.txt").status_code == 404


def test_report_files_stay_inside_the_report_folder(tmp_path):
    from bench.serve.answers import report_file

    (tmp_path / "report").mkdir()
    (tmp_path / "secret.png").write_bytes(b"not yours")
    (tmp_path / "report" / "plot.png").write_bytes(b"yours")
    folder = tmp_path / "report"
    assert report_file(folder, "plot.png") == folder / "plot.png"
    for name in ("../secret.png", "..\\secret.png", ".hidden.png", "plot.py", str(tmp_path / "secret.png")):
        assert report_file(folder, name) is None, name
