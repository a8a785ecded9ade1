"""`ngram show`: the trie under a context as the nested object it is, checked value by value
on a tiny model whose counts can be read off the text."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from corpora import Corpus, Document, UserError
from corpora.tokenizers import BOS
from ngram import NgramModel, save_model
from ngram.cli import main
from ngram.io import default_model_path
from ngram.show import render_subtree, subtree

# 6 sentences, 40 tokens + 6 <s> + 6 </s> = 52 positions. "want" occurs 3 times, after
# "I" and "You" (2 different words); "want to" is followed by "be" twice and "know" once.
TINY = """I want to be a doctor. I want to know the truth. You want to be free.

The cat sat on the mat. The dog sat on the log. The cat saw the dog.
"""


@pytest.fixture(scope="module")
def model() -> NgramModel:
    corpus = Corpus([Document("tiny.txt", TINY)], heldout_fraction=0.0)
    return NgramModel.build(corpus, order=3, min_count=1, progress=False)


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def leaf(token: str, count: int) -> dict:
    return {"token": token, "count": count, "continuation": None, "children": [], "more": 0}


def test_subtree_is_the_path_then_the_context_node_with_its_children(model):
    data = subtree(model, "want", depth=2, top=1)
    assert data["context"] == ["want"] and (data["depth"], data["top"]) == (2, 1)
    root = data["tree"]
    assert (root["token"], root["count"], root["continuation"], root["more"]) == (None, 52, 31, 21)  # 22 unigrams
    [want] = root["children"]
    assert want == {
        "token": "want", "count": 3, "continuation": 2, "more": 0,
        "children": [{"token": "to", "count": 3, "continuation": 2, "more": 1, "children": [leaf("be", 2)]}],
    }


def test_top_and_depth_cut_with_the_number_left_out(model):
    to = subtree(model, "want to", depth=1, top=5)["tree"]["children"][0]["children"][0]
    assert [(c["token"], c["count"]) for c in to["children"]] == [("be", 2), ("know", 1)]  # most frequent first
    shallow = subtree(model, "want", depth=1, top=5)["tree"]["children"][0]["children"][0]
    assert (shallow["token"], shallow["children"], shallow["more"]) == ("to", [], 2)  # cut by the depth
    context_only = subtree(model, "want", depth=0)["tree"]["children"][0]
    assert (context_only["children"], context_only["more"]) == ([], 1)


def test_the_empty_context_shows_the_root_and_sentence_start_adds_s(model):
    root = subtree(model, "", depth=1, top=4)["tree"]
    assert [c["count"] for c in root["children"]] == [6, 6, 6, 4]  # ".", "<s>", "</s>" in some order, then "the"
    assert root["children"][3]["token"] == "the" and root["more"] == 22 - 4
    data = subtree(model, "The", depth=1, top=5, sentence_start=True)
    assert data["context"] == [BOS, "The"]
    s = data["tree"]["children"][0]
    assert (s["token"], s["count"], s["continuation"]) == (BOS, 6, 0)  # nothing comes before <s>
    the = s["children"][0]
    assert the["children"] == [leaf("cat", 2), leaf("dog", 1)]


def test_rendered_as_a_javascript_object_with_counts_in_comments(model):
    text = render_subtree(subtree(model, "want", depth=2, top=1))
    assert text == "\n".join([
        "{  // the root: 52 tokens, <s> and </s> included",
        '  "want": {  // 3 times, after 2 different words',
        '    "to": {  // 3 times, after 2 different words',
        '      "be": 2,',
        "      // … and 1 more",
        "    },",
        "  },",
        "  // … and 21 more",
        "}",
    ])
    root = render_subtree(subtree(model, "", depth=0))
    assert root == "{  // the root: 52 tokens, <s> and </s> included\n  // … 22 not shown\n}"
    cut = render_subtree(subtree(model, "want", depth=1, top=1))
    assert '    "to": {…},  // 3 times, after 2 different words; 2 next words not shown' in cut


def test_unknown_or_too_long_context_is_one_clear_error(model):
    with pytest.raises(UserError, match="“want to zebra” never occurred.*longest seen start is “want to” \\(3 times\\)"):
        subtree(model, "want to zebra")  # zebra is read as <unk>, which never followed "want to"
    with pytest.raises(UserError, match="at most 3 tokens"):
        subtree(model, "I want to be")


def test_cli_text_json_default_model_and_errors(model, tmp_path):
    path = save_model(model, tmp_path / "m.json.gz")
    out = run("show", str(path), "want", "--depth", "2", "--top", "1").output
    assert out.strip() == render_subtree(subtree(model, "want", depth=2, top=1))
    data = json.loads(run("show", str(path), "want to", "--json").output)
    assert data == subtree(model, "want to", depth=2, top=10)
    save_model(model, default_model_path())
    root = json.loads(run("show", "--depth", "0", "--json").output)  # no model, no context: the root
    assert root["context"] == [] and root["tree"]["children"] == [] and root["tree"]["more"] == 22
    assert json.loads(run("show", str(path), "--depth", "0", "--json").output) == root
    error = run("show", str(path), "want to zebra", ok=False)
    assert error.exit_code != 0
    lines = error.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: “want to zebra” never occurred")
    assert "--top" in run("show", str(path), "want", "--top", "0", ok=False).output
