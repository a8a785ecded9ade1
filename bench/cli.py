"""`bench`: the two models side by side. Each command is a few lines over `bench.*`."""
from __future__ import annotations

from pathlib import Path

import click

from corpora.common import UserError
from corpora.cli_common import echo_json, friendly_errors

from . import compare as comparing
from . import models
from .perplexity import ABLATIONS

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


def read_prompts(path: Path) -> list[str]:
    """One prompt per non-empty line of a UTF-8 file."""
    from corpora.documents import read_text_argument

    prompts = [line.strip() for line in read_text_argument(path).splitlines() if line.strip()]
    if not prompts:
        raise UserError(f"{path} holds no prompts (one per line)")
    return prompts


@click.group()
@click.version_option(package_name="trie-vs-transformer")
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
    ngram = models.ngram_model(ngram_path)
    transformer = models.transformer_model(transformer_name)
    results = [comparing.compare(p, ngram, transformer, k, explain, budget=budget) for p in prompts]
    if as_json:
        echo_json([r.to_dict() for r in results] if prompts_file else results[0].to_dict())
    elif prompts_file is not None:
        click.echo(comparing.render_table(results, markdown=markdown))
    elif markdown:
        click.echo(comparing.render_markdown(results[0]))
    else:
        click.echo(comparing.render_text(results[0]))


def evaluation_text(ngram, text_file, dataset, dataset_config, split, column, max_words):
    """The text to score: --text FILE, --dataset NAME, or the n-gram's held-out split."""
    from . import perplexity as ppl

    limit = max_words or None
    if text_file is not None and dataset:
        raise UserError("give --text FILE or --dataset NAME, not both")
    if text_file is not None:
        return ppl.text_from_file(text_file, limit)
    if dataset:
        return ppl.text_from_dataset(dataset, dataset_config, split, column, limit)
    return ppl.heldout_text(ngram, limit)


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
@ngram_option
@transformer_option
@click.option("--markdown", is_flag=True, help="Print Markdown tables.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
def perplexity(text_file, dataset, dataset_config, split, column, max_words, orders, closed_vocab, ablation, mix,
               ngram_path, transformer_name, markdown, progress, as_json):
    """Both models on the same text: perplexity per token, per word, and bits per byte.

    Rows for the n-gram at every order with add-1, Kneser-Ney and MLE, and for the
    transformer with its full context and with its context cut to n-1 tokens. Per word
    and per byte divide each model's total NLL by the same word and byte counts.

    \b
    Example:
      bench perplexity --max-words 20000
      bench perplexity --text ../shared/corpora/eval/wikitext-2/wiki.test.raw --max-words 50000
      bench perplexity --mix 0.5 --json
    """
    from . import perplexity as ppl

    ngram = models.ngram_model(ngram_path, progress=progress)
    transformer = models.transformer_model(transformer_name)
    if max_words is None and (text_file is not None or dataset):
        max_words = ppl.DEFAULT_MAX_WORDS
    text = evaluation_text(ngram, text_file, dataset, dataset_config, split, column, max_words)
    if text.truncated:
        models.notice(f"scoring the first {text.units.words:,} words (--max-words); --max-words 0 scores all")
    report = ppl.compare_perplexity(
        ngram, transformer, text, parse_orders(orders, ngram.order), open_vocab=not closed_vocab,
        ablation=ablation, progress=progress,
    )
    if mix:
        from . import mixing

        mixing.add_mix_rows(report, ngram, transformer, text, list(mix), progress=progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(ppl.render_report(report, markdown))


def parse_orders(spec: str | None, highest: int) -> list[int]:
    """'1-5' or '2,3,5' -> a sorted list of orders within 1..highest."""
    if not spec:
        return list(range(1, highest + 1))
    orders: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.strip().partition("-")
            orders.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UserError(f"--orders {spec!r}: write e.g. 1-5 or 2,3,5") from None
    bad = [n for n in orders if not 1 <= n <= highest]
    if bad or not orders:
        raise UserError(f"--orders {spec!r}: the n-gram model has orders 1..{highest}")
    return sorted(orders)


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

    ngram = models.ngram_model(ngram_path, progress=progress)
    transformer = models.transformer_model(transformer_name)
    corpus = corpus_folder or models.corpus_folder_of(ngram)
    text = ngram.heldout_text()
    report = timing.measure(corpus, transformer, text, parse_orders(orders, 10), seed=seed, contexts=contexts, progress=progress)
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
@ngram_option
@transformer_option
@click.option("--progress/--no-progress", default=True, show_default=True)
@friendly_errors
def report(output, prompts_file, text_file, max_words, seed, no_speed, no_mix, ablation, ngram_path, transformer_name, progress):
    """Run compare, perplexity and speed; write one folder a reader can cite and rerun.

    report.md holds the tables with the exact command, model hashes, corpus, split and
    versions; report.json every number; PNG plots show perplexity against n-gram order,
    next-word probabilities for a prompt, and latency against context length.

    \b
    Example:
      bench report -o reports/books
      bench report -o reports/wiki --text ../shared/corpora/eval/wikitext-2/wiki.test.raw --max-words 50000
    """

    from ngram import default_model_path

    from . import report as reporting

    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file; give a folder for the report")
    prompts = read_prompts(prompts_file) if prompts_file else None
    ngram = models.ngram_model(ngram_path, progress=progress)
    transformer = models.transformer_model(transformer_name)
    text = evaluation_text(ngram, text_file, None, None, "test", "text", max_words)
    command = exact_command()
    result = reporting.build_report(
        ngram, Path(ngram_path or default_model_path()), transformer, text, command, prompts, seed,
        speed=not no_speed, mix=not no_mix, ablation=ablation, corpus_folder=models.corpus_folder_of(ngram), progress=progress,
    )
    path = reporting.write_report(result, output)
    click.echo(f"Wrote {path} and {len(result.files) - 1} more files in {output}.")
