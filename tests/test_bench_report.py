"""`bench report`: the experiments' sections, plots and cloze set; the plots' shared conventions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import models
from bench import perplexity as ppl
from bench import plots
from bench import report as reporting
from ngram import NgramModel, save_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"
BOOK = """The lamp was lit in the hall. Nobody came to the door that evening at all. We waited and waited
for hours by the fire. Then we heard a knock at the door. It was only the wind at the lamp.

The cat sat on the mat by the door. The dog looked at the cat for a long time. Nobody said a word
in the hall. Then the dog went to sleep by the fire. The cat was still there on the mat.
"""


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> tuple[NgramModel, Path]:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 6, encoding="utf-8")
    model = NgramModel.build(folder / "one.txt", order=3, min_count=1, heldout_fraction=0.3, progress=False)
    path = folder / "tiny.ngram"
    save_model(model, path)
    return model, path


@pytest.fixture(scope="module")
def small_sizes():
    """Every experiment at a test's size (the commands' defaults are for real books)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reporting, "CONTEXT_WORDS", 60)
        patch.setattr(reporting, "BREAKDOWN_WORDS", 60)
        patch.setattr(reporting, "ACCURACY_WORDS", 12)
        patch.setattr("bench.context.CONTEXT_WORDS", (1, 4))
        patch.setattr("bench.induction.DEFAULT_REPEATS", 2)
        patch.setattr("bench.induction.DEFAULT_LENGTH", 8)
        yield


CHEAP = ["context", "breakdown", "induction", "cloze"]  # accuracy expands words over GPT-2's vocabulary: slow here


@pytest.fixture(scope="module")
def staged(ngram, small_sizes, tmp_path_factory):
    """The cheap experiments run as the report runs them, their sections rendered and files staged."""
    model, _ = ngram
    report = reporting.Report("bench report -o x", {}, [], None)
    reporting.run_experiments(report, model, models.transformer_model(str(FIXTURE)), ppl.heldout_text(model), CHEAP, 0,
                              False)
    folder = tmp_path_factory.mktemp("staged")
    reporting.stage_experiment_files(report, folder)
    return report, "\n".join(reporting.render_experiments(report)), folder


def test_each_experiment_has_its_section_and_plot(staged):
    report, markdown, folder = staged
    assert list(report.experiments) == CHEAP
    for name in CHEAP:
        title, plot = reporting.EXPERIMENT_TITLES[name]
        assert f"## {title}" in markdown, name
        assert not isinstance(report.experiments[name], str), report.experiments[name]
        if plot:
            assert (folder / plot).stat().st_size > 0 and f"({plot})" in markdown
    assert "published, not measured" in markdown and "| n-gram |" in markdown  # the cloze table, in Markdown


def test_the_cloze_set_is_written_beside_the_report(staged):
    report, markdown, folder = staged
    lines = (folder / "cloze.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines and [json.loads(line)["text"] for line in lines] == report.cloze_set
    assert report.experiments["cloze"].models[0].passages == len(lines)
    assert "`bench cloze cloze.jsonl`" in markdown


@pytest.mark.slow  # a whole report with every experiment: about a minute on a loaded 2-core machine
def test_the_written_report_holds_every_experiment(ngram, small_sizes, tmp_path):
    model, path = ngram
    gpt = models.transformer_model(str(FIXTURE))
    report = reporting.build_report(model, path, gpt, ppl.heldout_text(model), "bench report -o x",
                                    prompts=["The cat sat on the"], speed=False, mix=False, ablation="none",
                                    progress=False, experiments=reporting.EXPERIMENTS)
    reporting.write_report(report, tmp_path)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"## {reporting.EXPERIMENT_TITLES[name][0]}" in markdown for name in reporting.EXPERIMENTS)
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert set(data["experiments"]) == set(reporting.EXPERIMENTS)
    assert sorted(data["files"]) == sorted(p.name for p in tmp_path.iterdir())


def test_an_experiment_that_cannot_run_is_said_not_to_and_the_rest_goes_on(ngram, small_sizes, monkeypatch):
    from corpora import UserError

    model, path = ngram

    def refuse(*args):
        raise UserError("the held-out text holds no passage that meets the cloze rule; pass a JSONL file")

    monkeypatch.setitem(reporting.EXPERIMENT_RUNNERS, "cloze", refuse)
    report = reporting.Report("bench report", {}, [], None)
    reporting.run_experiments(report, model, models.transformer_model(str(FIXTURE)), ppl.heldout_text(model),
                              ["induction", "cloze"], 0, False)
    assert report.experiments["cloze"].startswith("not run: the held-out text holds no passage")
    assert list(report.experiments) == ["induction", "cloze"]
    assert "Not run: the held-out text" in "\n".join(reporting.render_experiments(report))


def test_every_plot_takes_its_colours_from_the_one_palette(staged, ngram):
    report, _, _ = staged
    model, _ = ngram
    perplexity = ppl.compare_perplexity(model, models.transformer_model(str(FIXTURE)), ppl.heldout_text(model),
                                        smoothings=["kn"], open_vocab=False, ablation="top")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = []
    original = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        for ax in fig.axes:
            seen.extend(matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines())
        return original(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.MonkeyPatch.context():
        patch.setattr(plt.Figure, "savefig", keep)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            plots.perplexity_vs_order(perplexity, Path(tmp) / "a.png")
            plots.context_curves(report.experiments["context"], Path(tmp) / "b.png")
            plots.latency_vs_context({"ngram": {"1": 0.01, "16": 0.02}, "transformer": {"1": 1.0, "16": 4000.0}},
                                     Path(tmp) / "c.png")
    palette = {matplotlib.colors.to_hex(c) for c in plots.MODEL_COLOURS.values()}
    assert seen and set(seen) <= palette


def test_log_axes_print_plain_numbers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_yscale("log")
    ax.plot([1, 2], [300, 4000])
    ticks = plots.nice_ticks(300, 4000)
    plots.plain_log_axis(ax.yaxis, ticks)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    assert labels == ["500", "1,000", "2,000"]  # plain numbers, never 10^3 or 4×10³
