"""`bench`: the two models side by side. Each command is a few lines over `bench.*`."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from corpora.cli_common import echo_json, friendly_errors, plural, version_option
from corpora.common import UserError

from . import compare as comparing
from . import models
from .perplexity import ABLATIONS

REPORT_EXPERIMENTS = ("learning", "context", "breakdown", "induction", "accuracy", "cloze")  # bench.report.EXPERIMENTS, without importing it

NGRAM_HELP = "The n-gram model file [default: the default model; built from the default books if missing]."
TRANSFORMER_HELP = (
    "The transformer: a model folder, a Hugging Face name, 'bundled' (trained on the default books), "
    "or 'auto' (GPT-2 small if it can be had, else bundled)."
)


def ngram_option(func):
    return click.option("--ngram", "ngram_path", type=click.Path(path_type=Path), default=None, help=NGRAM_HELP)(func)


def transformer_option(func):
    return click.option("--transformer", "transformer_name", default=models.AUTO, show_default=True, help=TRANSFORMER_HELP)(func)


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def exact_command() -> str:
    """The command being run, rebuilt from its options (for reports: what to type to redo it)."""
    import shlex

    ctx = click.get_current_context()
    words = ["bench", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value is False or value == ():
            continue
        if isinstance(param, click.Argument):
            words.append(shlex.quote(str(value)))
            continue
        flag = max(param.opts, key=len)
        if value is True:
            words.append(flag)
        else:
            for item in value if isinstance(value, (tuple, list)) else [value]:
                words += [flag, shlex.quote(str(item))]
    return " ".join(words)


# ------------------------------------------- checks made before any model loads
# Loading the models takes seconds; a mistyped option should be refused at once, and
# in the words the user typed.


@contextmanager
def transformer_option_named() -> Iterator[None]:
    """Errors about the transformer name `--transformer`, the option bench has.

    `transformer.weights` words its errors for the transformer tool, whose option is
    `--model`; the same mistake made here must name the option actually typed.
    """
    try:
        yield
    except UserError as err:
        raise UserError(str(err).replace("--model", "--transformer")) from None


def check_transformer(name: str) -> None:
    """Refuse a --transformer that names no model, without loading one (`auto` always resolves)."""
    from transformer.weights import resolve_model_dir

    if name == models.AUTO:
        return
    with transformer_option_named():
        resolve_model_dir(name)


def load_transformer(name: str) -> models.TransformerChoice:
    """The transformer named by --transformer, loaded."""
    with transformer_option_named():
        return models.transformer_model(name)


def check_ngram_path(path: Path | None) -> None:
    """Refuse a --ngram that is not a model (None is the default model, built if missing).

    A model is a folder of arrays (`ngram build -o NAME.ngram`) or a gzip JSON file."""
    from ngram.arrays import is_array_model

    if path is None:
        return
    if not path.exists():
        raise UserError(f"--ngram {path}: no such model")
    if path.is_dir() and not is_array_model(path):
        raise UserError(f"--ngram {path} is a folder but not an n-gram model (ngram build ... -o NAME.ngram makes one)")


def check_corpus_folder(path: Path | None) -> None:
    """Refuse a --corpus that does not exist (None is the n-gram's own corpus)."""
    if path is not None and not path.exists():
        raise UserError(f"--corpus {path}: no such folder")


def check_output_folder(folder: Path) -> None:
    """Refuse a report folder that is a file or cannot be created, before minutes of work."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; give a folder for the report")
    existing = next(p for p in [folder, *folder.absolute().parents] if p.exists())  # the folder, or where it will be made
    if not existing.is_dir():
        raise UserError(f"cannot make the report folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the report into {folder}: {existing} is not writable")


def parse_orders(spec: str) -> list[int]:
    """'1-5' or '2,3,5' -> the sorted orders. Only the form is checked here: which orders
    the n-gram model has is known once it is loaded (`check_orders`)."""
    orders: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.strip().partition("-")
            orders.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UserError(f"--orders {spec!r}: write e.g. 1-5 or 2,3,5") from None
    if not orders:
        raise UserError(f"--orders {spec!r} names no order; write e.g. 1-5 or 2,3,5")
    if min(orders) < 1:
        raise UserError(f"--orders {spec!r}: orders start at 1; write e.g. 1-5 or 2,3,5")
    return sorted(orders)


def check_orders(orders: list[int], highest: int, spec: str, limit: str = "the n-gram model has orders") -> list[int]:
    """Refuse orders above `highest` (the model's own, or what a command builds); returns `orders`."""
    if max(orders) > highest:
        raise UserError(f"--orders {spec!r}: {limit} 1..{highest}")
    return orders


def read_prompts(path: Path) -> list[str]:
    """One prompt per non-empty line of a UTF-8 file."""
    from corpora.documents import read_text_argument

    prompts = [line.strip() for line in read_text_argument(path).splitlines() if line.strip()]
    if not prompts:
        raise UserError(f"{path} holds no prompts (one per line)")
    return prompts


@click.group()
@version_option
def main() -> None:
    """The n-gram trie and the transformer, side by side, on the same prompts and text.

    \b
    Example:
      bench compare "It was the best of times"
      bench perplexity --max-words 20000
      bench report -o reports/
    """


@main.command()
@click.argument("prompt", required=False)
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), help="A file of prompts, one per line: prints a table.")
@click.option("-k", "--top", "k", type=click.IntRange(1, 50), default=10, show_default=True, help="How many next words.")
@click.option("--explain", is_flag=True, help="Also show the transformer's logit lens (its guess after each layer).")
@click.option("--budget", type=click.IntRange(0), default=1024, show_default=True,
              help="Unfinished words the transformer may continue by a token (more: more of its probability covered, slower).")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print Markdown, to paste into teaching material.")
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def compare(prompt, prompts_file, k, explain, budget, ngram_path, transformer_name, markdown, as_json):
    """Next-word predictions of both models for PROMPT, side by side.

    Builds the default n-gram model on first use (with progress), loads GPT-2 small if it
    can be had (else the bundled model trained on the same books), and prints the top-k
    next words of each with probabilities, why the n-gram chose them, a greedy
    continuation from each and the time each prediction took.

    \b
    Example:
      bench compare "It was the best of times"
      bench compare "I want to" -k 5 --markdown
      bench compare --prompts bench/prompts.txt --json
    """
    if (prompt is None) == (prompts_file is None):
        raise UserError('give one PROMPT (e.g. "It was the best of times") or --prompts FILE')
    prompts = [prompt] if prompts_file is None else read_prompts(prompts_file)
    if any(not p.strip() for p in prompts):
        raise UserError('the prompt is empty; give some text, e.g. "It was the best of times"')
    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    ngram = models.ngram_model(ngram_path)
    transformer = load_transformer(transformer_name)
    results = [comparing.compare(p, ngram, transformer, k, explain, budget=budget) for p in prompts]
    if as_json:
        echo_json([r.to_dict() for r in results] if prompts_file else results[0].to_dict())
    elif prompts_file is not None:
        click.echo(comparing.render_table(results, markdown=markdown))
    elif markdown:
        click.echo(comparing.render_markdown(results[0]))
    else:
        click.echo(comparing.render_text(results[0]))


def evaluation_text(text_file, dataset, dataset_config, split, column, max_words):
    """The text to score from --text FILE or --dataset NAME, read before any model loads.

    None means the n-gram's held-out split, which is known only once it is loaded.
    """
    from . import perplexity as ppl

    limit = max_words or None
    if text_file is not None and dataset:
        raise UserError("give --text FILE or --dataset NAME, not both")
    if text_file is not None:
        return ppl.text_from_file(text_file, limit)
    if dataset:
        return ppl.text_from_dataset(dataset, dataset_config, split, column, limit)
    return None


@main.command()
@click.option("--text", "text_file", type=click.Path(path_type=Path), help="Score this text file [default: the held-out split of the books].")
@click.option("--dataset", help="Or a Hugging Face dataset (online), e.g. wikitext.")
@click.option("--dataset-config", help="The dataset's configuration, e.g. wikitext-2-raw-v1.")
@click.option("--split", default="test", show_default=True, help="The dataset split.")
@click.option("--column", default="text", show_default=True, help="The dataset column holding text.")
@click.option("--max-words", type=click.IntRange(0), default=None,
              help="Score only the first N words (0 = all) [default: all of the held-out split; 300,000 of a file or dataset].")
@click.option("--orders", default=None, help="n-gram orders to score, e.g. 1-5 or 3,5 [default: 1..N].")
@click.option("--closed-vocab", is_flag=True, help="Score unknown words as a free <unk> (not comparable in bits per byte).")
@click.option("--ablation", type=click.Choice(ABLATIONS), default="top", show_default=True,
              help="Transformer rows with its context cut to n-1 tokens: for the highest order only, every order, or none.")
@click.option("--mix", "mix", type=click.FloatRange(0, 1), multiple=True,
              help="Also score λ·p_transformer + (1−λ)·p_ngram on aligned BPE tokens (repeatable); reports the best λ.")
@click.option("--breakdown", "with_breakdown", is_flag=True,
              help="Also split the words by the longest context the trie has seen before them, with both models' "
                   "per-word perplexity in each bucket.")
@click.option("--wikitext", "as_wikitext", is_flag=True,
              help="--text is raw WikiText (wiki.test.raw): score it as lm-evaluation-harness does (articles, its "
                   "detokenizer, disjoint windows, the original words and bytes), with published figures beside.")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print Markdown tables.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def perplexity(text_file, dataset, dataset_config, split, column, max_words, orders, closed_vocab, ablation, mix,
               with_breakdown, as_wikitext, ngram_path, transformer_name, markdown, progress, as_json):
    """Both models on the same text: perplexity per token, per word, and bits per byte.

    Rows for the n-gram at every order with add-1, Kneser-Ney and MLE, and for the
    transformer with its full context and with its context cut to n-1 tokens. Per word
    and per byte divide each model's total NLL by the same word and byte counts.

    \b
    Example:
      bench perplexity --max-words 20000
      bench perplexity --text ../shared/corpora/eval/wikitext-2/wiki.test.raw --max-words 50000
      bench perplexity --mix 0.5 --json
      bench perplexity --breakdown --max-words 5000
      bench perplexity --text ../shared/corpora/eval/wikitext-2/wiki.test.raw --wikitext --transformer gpt2
    """
    from . import perplexity as ppl

    wanted = parse_orders(orders) if orders else None
    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    if max_words is None and (text_file is not None or dataset):
        max_words = ppl.DEFAULT_MAX_WORDS
    if as_wikitext:
        wikitext_perplexity(text_file, dataset, mix, with_breakdown, max_words, wanted, orders, closed_vocab, ablation,
                            ngram_path, transformer_name, markdown, progress, as_json)
        return
    text = evaluation_text(text_file, dataset, dataset_config, split, column, max_words)
    ngram = models.ngram_model(ngram_path, progress=progress)
    wanted = check_orders(wanted, ngram.order, orders) if wanted else list(range(1, ngram.order + 1))
    if with_breakdown and ngram.tokenizer.name != "words":
        raise UserError(f"--breakdown needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    text = text or ppl.heldout_text(ngram, max_words or None)
    if text.truncated:
        models.notice(f"scoring the first {plural(text.units.words, 'word')} (--max-words); --max-words 0 scores all")
    transformer = load_transformer(transformer_name)
    report = ppl.compare_perplexity(
        ngram, transformer, text, wanted, open_vocab=not closed_vocab, ablation=ablation, progress=progress,
    )
    if mix:
        from . import mixing

        mixing.add_mix_rows(report, ngram, transformer, text, list(mix), progress=progress)
    split_up = None
    if with_breakdown:
        from . import breakdown as buckets

        spelling = None if closed_vocab else ppl.SpellingModel.for_model(ngram)
        split_up = buckets.breakdown(ngram, transformer, text.text, spelling, progress)
    if as_json:
        echo_json({**report.to_dict(), **({"breakdown": split_up.to_dict()} if split_up else {})})
    else:
        click.echo(ppl.render_report(report, markdown))
        if split_up:
            click.echo("\n" + buckets.render_breakdown(split_up, markdown))


def wikitext_perplexity(text_file, dataset, mix, with_breakdown, max_words, wanted, orders, closed_vocab, ablation,
                        ngram_path, transformer_name, markdown, progress, as_json) -> None:
    """`bench perplexity --wikitext`: the checks, then `bench.wikitext.wikitext_report`."""
    from . import perplexity as ppl
    from . import wikitext as wiki

    if text_file is None or dataset:
        raise UserError("--wikitext reads a raw WikiText file: give --text wiki.test.raw (not --dataset)")
    if mix or with_breakdown:
        raise UserError("--wikitext does not go with --mix or --breakdown")
    text = wiki.read_wikitext(text_file, max_words or None)
    if text.truncated:
        models.notice(f"scoring the first {plural(len(text.originals), 'article')} ({text.units.words:,} words, "
                      "--max-words); --max-words 0 scores all")
    ngram = models.ngram_model(ngram_path, progress=progress)
    wanted = check_orders(wanted, ngram.order, orders) if wanted else list(range(1, ngram.order + 1))
    transformer = load_transformer(transformer_name)
    report = wiki.wikitext_report(ngram, transformer, text, wanted, open_vocab=not closed_vocab, ablation=ablation,
                                  progress=progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(ppl.render_report(report, markdown))


@main.command()
@click.option("--orders", default="2-5", show_default=True, help="n-gram orders to build and time.")
@click.option("--corpus", "corpus_folder", type=click.Path(path_type=Path), default=None,
              help="Folder of books to build from [default: the n-gram model's own corpus].")
@ngram_option
@transformer_option
@click.option("--contexts", type=click.IntRange(10), default=500, show_default=True, help="Contexts to time n-gram predictions on.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--markdown", is_flag=True, help="Print Markdown tables.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def speed(orders, corpus_folder, ngram_path, transformer_name, contexts, seed, markdown, progress, as_json):
    """Build time and memory, load time, next-token latency and generation speed of both.

    Every n-gram build and every load runs in a fresh process, so time and memory are
    the whole process's. Quote the ratios: absolute times depend on the machine.

    \b
    Example:
      bench speed
      bench speed --orders 3,5 --json
    """

    from . import speed as timing

    wanted = check_orders(parse_orders(orders), timing.MAX_ORDER, orders, "bench speed builds orders")
    check_corpus_folder(corpus_folder)
    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    ngram = models.ngram_model(ngram_path, progress=progress)
    transformer = load_transformer(transformer_name)
    corpus = corpus_folder or models.corpus_folder_of(ngram)
    text = ngram.heldout_text()
    report = timing.measure(corpus, transformer, text, wanted, seed=seed, contexts=contexts, progress=progress)
    report.command = exact_command()
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(timing.render_speed(report, markdown))


@main.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("reports/latest"), show_default=True,
              help="Folder to write report.md, report.json and the plots into.")
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), help="Prompts, one per line [default: bench/prompts.txt].")
@click.option("--text", "text_file", type=click.Path(path_type=Path), help="Score this text file [default: the held-out split].")
@click.option("--max-words", type=click.IntRange(0), default=None, help="Score only the first N words (0 = all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for everything random (the speed contexts).")
@click.option("--no-speed", is_flag=True, help="Leave out the speed section (the only part that varies between runs).")
@click.option("--no-mix", is_flag=True, help="Leave out the mixture rows (they need an n-gram over the transformer's tokens).")
@click.option("--ablation", type=click.Choice(ABLATIONS), default="top", show_default=True,
              help="Transformer rows with its context cut to n-1 tokens: highest order only, every order, or none.")
@click.option("--skip", "skipped", multiple=True, type=click.Choice(REPORT_EXPERIMENTS),
              help="Leave out one of the experiments (repeatable): learning, context, breakdown, induction, accuracy, cloze.")
@ngram_option
@transformer_option
@click.option("--progress/--no-progress", default=True, show_default=True)
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def report(output, prompts_file, text_file, max_words, seed, no_speed, no_mix, ablation, skipped, ngram_path,
           transformer_name, progress):
    """Run compare, perplexity, the experiments and speed; write one folder a reader can cite and rerun.

    report.md holds the tables with the exact command, model hashes, corpus, split and
    versions; report.json every number; PNG plots show perplexity against n-gram order,
    next-word probabilities for a prompt, latency against context length, and the
    experiments of bench context, induction and cloze (whose passages are written beside
    as cloze.jsonl). The breakdown, accuracy and cloze tables are in report.md.

    \b
    Example:
      bench report -o reports/books
      bench report -o reports/wiki --text ../shared/corpora/eval/wikitext-2/wiki.test.raw --max-words 50000
      bench report -o reports/quick --no-speed --skip context --skip accuracy
    """

    from ngram import default_model_path

    from . import perplexity as ppl
    from . import report as reporting

    check_output_folder(output)
    prompts = read_prompts(prompts_file) if prompts_file else None
    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    text = evaluation_text(text_file, None, None, "test", "text", max_words)
    ngram = models.ngram_model(ngram_path, progress=progress)
    text = text or ppl.heldout_text(ngram, max_words or None)
    transformer = load_transformer(transformer_name)
    command = exact_command()
    result = reporting.build_report(
        ngram, Path(ngram_path or default_model_path()), transformer, text, command, prompts, seed,
        speed=not no_speed, mix=not no_mix, ablation=ablation, corpus_folder=models.corpus_folder_of(ngram), progress=progress,
        experiments=[e for e in REPORT_EXPERIMENTS if e not in skipped],
    )
    path = reporting.write_report(result, output)
    click.echo(f"Wrote {path} and {plural(len(result.files) - 1, 'more file')} in {output}.")


# ------------------------------------------------ experiments: where each model wins


def check_plot_path(path: Path | None) -> None:
    """Refuse a --plot that is a folder or ends in something other than .png, before any model loads."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"--plot {path} is a folder; give a file name ending in .png")
    if path.suffix.lower() != ".png":
        raise UserError(f"--plot {path}: give a file name ending in .png")
    check_output_folder(path.parent if str(path.parent) else Path("."))


def experiment_text(text_file: Path | None, max_words: int | None, ngram):
    """--text FILE or the held-out split, cut at --max-words (0 = all), with the notice bench perplexity gives."""
    from . import perplexity as ppl

    text = evaluation_text(text_file, None, None, "test", "text", max_words) if text_file else None
    text = text or ppl.heldout_text(ngram, max_words or None)
    if text.truncated:
        models.notice(f"scoring the first {plural(text.units.words, 'word')} (--max-words); --max-words 0 scores all")
    return text


@main.command()
@click.option("--text", "text_file", type=click.Path(path_type=Path), help="Score this text file [default: the held-out split of the books].")
@click.option("--max-words", type=click.IntRange(0), default=20_000, show_default=True, help="Score only the first N words (0 = all).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Also draw both curves into this PNG file.")
@click.option("--closed-vocab", is_flag=True, help="Score the n-gram's unknown words as a free <unk>.")
@click.option("--exact", is_flag=True,
              help="One window per word for every cut (slow for long cuts); by default cuts of 16+ words share a "
                   "window among c/8 words, each seeing c to 1.125c words.")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def context(text_file, max_words, plot_path, closed_vocab, exact, ngram_path, transformer_name, markdown, progress, as_json):
    """Per-word perplexity against how many preceding words each model may see.

    The transformer with its context cut to the last 1, 2, 4, ..., 128 words and with
    its full window; the Kneser-Ney n-gram at orders 2..N (n-1 words of context). Where
    the n-gram's curve flattens and the transformer's keeps falling is what attention adds.

    \b
    Example:
      bench context --max-words 5000
      bench context --text book.txt --plot context.png --json
    """
    from . import context as ctx

    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    check_plot_path(plot_path)
    if text_file is not None:
        evaluation_text(text_file, None, None, "test", "text", max_words or None)  # a bad file is refused before loading
    ngram = models.ngram_model(ngram_path, progress=progress)
    text = experiment_text(text_file, max_words, ngram)
    transformer = load_transformer(transformer_name)
    report = ctx.context_sweep(ngram, transformer, text, open_vocab=not closed_vocab, exact=exact, progress=progress)
    show_experiment(report, lambda r: ctx.render_context(r, markdown), as_json, plot_path, "context_curves")


def show_experiment(report, render, as_json: bool, plot_path: Path | None, plot_name: str) -> None:
    """Draw the experiment's plot if one was asked for (`bench.plots.<plot_name>`), then print
    the report as JSON or as text."""
    if plot_path is not None:
        from . import plots

        plot_path.parent.mkdir(parents=True, exist_ok=True)
        getattr(plots, plot_name)(report, plot_path)
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(render(report))
    if plot_path is not None:
        click.echo(f"Plot: {plot_path}")


@main.command()
@click.option("--length", type=click.IntRange(2), default=60, show_default=True, help="Random tokens in each copy.")
@click.option("--repeats", type=click.IntRange(1), default=10, show_default=True, help="How many random sequences to average over.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random sequences.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Also draw the induction score of every layer and head into this PNG file.")
@click.option("--closed-vocab", is_flag=True, help="Score the n-gram's unknown words as a free <unk>.")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def induction(length, repeats, seed, plot_path, closed_vocab, ngram_path, transformer_name, markdown, as_json):
    """In-context copying: random token sequences shown twice (Olsson et al. 2022).

    Both models' loss on the first and on the second copy (the n-gram has never seen
    the sequence and cannot copy it), and for the transformer an induction score per
    layer and head: the mean attention from each token of the second copy to the token
    after its earlier occurrence.

    \b
    Example:
      bench induction
      bench induction --length 100 --repeats 20 --plot induction.png --json
    """
    from . import induction as copying
    from . import perplexity as ppl

    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    check_plot_path(plot_path)
    ngram = models.ngram_model(ngram_path)
    transformer = load_transformer(transformer_name)
    copying.check_fits(transformer, length)
    spelling = None if closed_vocab else ppl.SpellingModel.for_model(ngram)
    report = copying.induction(ngram, transformer, length, repeats, seed, spelling)
    show_experiment(report, lambda r: copying.render_induction(r, markdown), as_json, plot_path, "induction_heatmap")


@main.command()
@click.option("--text", "text_file", type=click.Path(path_type=Path), help="Guess the words of this text file [default: the held-out split].")
@click.option("--max-words", type=click.IntRange(0), default=2_000, show_default=True, help="Guess only in the first N words (0 = all).")
@click.option("--budget", type=click.IntRange(1), default=64, show_default=True,
              help="Unfinished words the transformer may continue by a token, per guess (more: closer to its true ranking, slower).")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def accuracy(text_file, max_words, budget, ngram_path, transformer_name, markdown, progress, as_json):
    """Next-word accuracy, top-1 and top-5, of both models on the same text.

    Every word and punctuation mark (cut as the n-gram cuts them) is a target; each
    model guesses it from what came before (the n-gram: its sentence so far; the
    transformer: as much text as fits its window).

    \b
    Example:
      bench accuracy
      bench accuracy --max-words 500 --json
    """
    from . import accuracy as guessing

    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    if text_file is not None:
        evaluation_text(text_file, None, None, "test", "text", max_words or None)  # a bad file is refused before loading
    ngram = models.ngram_model(ngram_path, progress=progress)
    if ngram.tokenizer.name != "words":
        raise UserError(f"bench accuracy needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    text = experiment_text(text_file, max_words, ngram)
    transformer = load_transformer(transformer_name)
    report = guessing.accuracy(ngram, transformer, text.text, text.source, budget, progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(guessing.render_accuracy(report, markdown))


# ------------------------------------------------ cloze: the last word of a passage


def cloze_passages(passages_file: Path | None, dataset: str | None, split: str, column: str):
    """The passages from FILE.jsonl or --dataset, read before any model loads (None: build from the held-out books)."""
    from . import cloze as cz

    if passages_file is not None and dataset:
        raise UserError("give FILE.jsonl or --dataset NAME, not both")
    if passages_file is not None:
        return cz.read_jsonl(passages_file)
    if dataset:
        return cz.read_dataset(dataset, split, column)
    return None


def default_cloze_set_path() -> Path:
    """Where the cloze set built from the held-out books is written: beside the default n-gram model."""
    from ngram import default_model_path

    return default_model_path().parent / "cloze-heldout.jsonl"


@main.command()
@click.argument("passages_file", metavar="[FILE.jsonl]", required=False, type=click.Path(path_type=Path))
@click.option("--dataset", help="Or a Hugging Face dataset (online), e.g. EleutherAI/lambada_openai.")
@click.option("--split", default="test", show_default=True, help="The dataset split.")
@click.option("--column", default="text", show_default=True, help="The dataset column holding the passage.")
@click.option("--passages", "limit", type=click.IntRange(0), default=None,
              help="Score only the first N passages (0 = all) [default: all of a file; 500 built from the books].")
@click.option("--save-set", "save_set", type=click.Path(path_type=Path), default=None,
              help="Where to write the cloze set built from the held-out books [default: cloze-heldout.jsonl "
                   "beside the default n-gram model].")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="BLAS threads for the transformer's passes (its matmuls are small: one thread wastes no time "
                   "waiting for another on a busy machine).")
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@models.diagnose_damage()  # a crash on a damaged n-gram model: one clear error
def cloze(passages_file, dataset, split, column, limit, save_set, threads, ngram_path, transformer_name, markdown, progress,
          as_json):
    """Guess the last word of each passage from the whole passage (LAMBADA).

    lm-evaluation-harness's lambada_openai definitions: context = all but the last word,
    target = " " + the last word; accuracy = greedy decoding reproduces every target
    token; perplexity = exp(-mean target log-likelihood). The n-gram is right when the
    target is its top-1 next word. Without FILE.jsonl ({"text": ...} a line), a cloze
    set is built from the held-out books (passages whose last word occurred earlier in
    them) and written to a file whose path is printed. Published GPT-2 figures are
    printed beside, labelled as published, not measured.

    \b
    Example:
      bench cloze
      bench cloze lambada_test.jsonl --passages 500 --json
      bench cloze --dataset EleutherAI/lambada_openai
    """
    from . import cloze as cz

    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    if save_set is not None and (passages_file is not None or dataset):
        raise UserError("--save-set writes the set built from the held-out books; it does not go with FILE or --dataset")
    passages = cloze_passages(passages_file, dataset, split, column)
    ngram = models.ngram_model(ngram_path, progress=progress)
    if ngram.tokenizer.name != "words":
        raise UserError(f"bench cloze needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    rule = None
    if passages is None:
        texts = cz.build_cloze_set(cz.heldout_documents(ngram), limit or cz.DEFAULT_PASSAGES)
        path = cz.write_jsonl(texts, save_set or default_cloze_set_path())
        models.notice(f"cloze set: {plural(len(texts), 'passage')} from the held-out books written to {path} "
                      f"(bench cloze {path} scores it again)")
        passages, source, rule = [cz.split_passage(t, i) for i, t in enumerate(texts, 1)], str(path), cz.CLOZE_RULE
    else:
        source = str(passages_file or f"datasets:{dataset}/{split}")
        if limit:
            passages = passages[:limit]
    transformer = load_transformer(transformer_name)
    from corpora.runtime import set_blas_threads

    set_blas_threads(threads)
    report = cz.cloze(ngram, transformer, passages, source, rule, progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(cz.render_cloze(report, markdown))


# ------------------------------------------------------------ the classroom page


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but 127.0.0.1/localhost lets other machines in (a warning says so).")
@ngram_option
@transformer_option
@click.option("--report", "report_folder", type=click.Path(path_type=Path), default=Path("reports/latest"),
              show_default=True, help="The bench report folder the page's report view shows.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="BLAS threads for the transformer (one answers a keystroke fastest on a shared machine).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser tab once the server is up.")
@json_option
@friendly_errors
def serve(port, host, ngram_path, transformer_name, report_folder, threads, open_browser, as_json):
    """The classroom page: both models side by side in a browser, with a JSON API.

    Loads both models once, then serves the page and its API (see the README) until
    Ctrl-C. Works offline; a model that fails to load leaves the other one serving and
    the page says why. --json prints the address and the models' status as JSON first.

    \b
    Example:
      bench serve
      bench serve --port 8080 --open
      bench serve --transformer bundled --ngram model.ngram
    """
    from .serve import create_app, running

    check_ngram_path(ngram_path)
    check_transformer(transformer_name)
    sock = running.bind(host, port)  # a taken port is refused before the models load
    if not running.is_loopback(host):
        models.notice(f"--host {host}: other machines can reach this page; the server has no login")
    running.set_threads(threads)
    ngram, transformer, problems = running.load_models(ngram_path, transformer_name)
    app = create_app(ngram, transformer, problems, report_folder)
    url = running.page_url(host, port)
    if as_json:
        echo_json({"url": url, "host": host, "port": port, **running.status(app)})
    else:
        for which, why in problems.items():
            models.notice(f"the {which} model is unavailable: {why}")
        click.echo(f"The classroom page is at {url} (Ctrl-C stops the server).")
    running.serve(app, sock, url if open_browser else None)
