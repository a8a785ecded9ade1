"""The `ngram` command: build, predict, show, complete, generate, perplexity, stats.

Each command is a few lines over the Python API in `ngram` (see its docstring).
Commands that take a MODEL find the default model (written by `ngram build` without
`-o`) when it is left out.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from corpora import Corpus, UserError, dataset_corpus
from corpora.cli_common import echo_json, elide, friendly_errors, plural, version_option
from corpora.documents import read_text_argument
from corpora.tokenizers import EOS, TOKENIZER_CHOICES, UNK, get_tokenizer
from corpora.units import Score

from .arrays import ARPA_KIND, is_array_model
from .backoff import NO_COUNTS
from .build import announce_saving
from . import counting
from .chunked import parse_memory
from .io import (GZIP_MAGIC, check_probabilities, check_score, default_model_path, diagnose_damage, is_json_path,
                 load_model, model_bytes, save_model)
from .model import NgramModel
from .phrases import continue_text
from .predict import Prediction, describe_match
from .score import score_tokens
from .show import render_subtree
from .smoothing import smoothing_label

SMOOTHING_CHOICE = click.Choice(["kn", "addk", "mle", "backoff"])


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)


def smoothing_option(func):
    return click.option(
        "--smoothing",
        type=SMOOTHING_CHOICE,
        default="kn",
        show_default=True,
        help="kn = interpolated modified Kneser-Ney, addk = add-k, mle = maximum likelihood, "
        "backoff = stupid backoff (a ranking score, not a probability).",
    )(func)


def is_model_file(path: str) -> bool:
    """True if `path` looks like a saved model (a model folder, or gzip JSON), not a text file or a context."""
    p = Path(path)
    try:
        return is_array_model(p) or (p.is_file() and p.open("rb").read(2) == GZIP_MAGIC)
    except OSError:
        return False



def model_and_text(args: tuple[str, ...], what: str) -> tuple[NgramModel, str]:
    """Split `[MODEL] TEXT` arguments, check them, then load the model (the default one if not given).

    Mistakes in the arguments are refused before the model, which can take seconds, loads.
    """
    if len(args) == 1:
        model_path, text = None, args[0]
    elif len(args) == 2:
        model_path, text = args
    else:
        raise UserError(f"expected [MODEL] {what.upper()}, got {len(args)} arguments")
    if not text.strip():
        raise UserError(f"{what.upper()} is empty; give some words")
    return load_model(model_path), text


def check_build_arguments(order: int, min_count: int | None, heldout_fraction: float) -> None:
    """Refuse impossible `ngram build` options by their names, before any text is read."""
    if order < 1:
        raise UserError(f"--order must be at least 1, got {order}")
    if min_count is not None and min_count < 1:
        raise UserError(f"--min-count must be at least 1, got {min_count}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise UserError(f"--heldout-fraction must be in [0, 1), got {heldout_fraction}")


def perplexity_paths(args: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Split `[MODEL] [TEXT_FILE]` into the model path and the text path (None: the default)."""
    if len(args) > 2:
        raise UserError(f"expected [MODEL] [TEXT_FILE], got {len(args)} arguments")
    model_path = args[0] if args and (len(args) == 2 or is_model_file(args[0])) else None
    text_path = args[-1] if args and (len(args) == 2 or model_path is None) else None
    return model_path, text_path


@click.group()
@version_option
def main() -> None:
    """An n-gram language model stored as a nested-dict trie.

    \b
    Start with:
      ngram build corpora/
      ngram predict "It was a dark and stormy"
    """


@main.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write the model [default: the default model].")
@click.option("--order", type=int, default=5, show_default=True, help="Longest n-gram (N).")
@click.option(
    "--tokens", default="words", show_default=True, metavar="|".join(TOKENIZER_CHOICES),
    help="words, characters, GPT-2's BPE tokens, or the BPE tokenizer in folder DIR (vocab.json + merges.txt).",
)
@click.option("--lowercase", is_flag=True, help="Fold case before counting (words and chars only).")
@click.option("--min-count", type=int, default=None, help="Rarer tokens become <unk>.  [default: 2; 1 with BPE tokens]")
@click.option("--heldout-fraction", type=float, default=0.05, show_default=True, help="Tail of every document kept out for evaluation.")
@click.option("--dataset", help="Read a Hugging Face dataset (or 'text' with --data-files) instead of SOURCE.")
@click.option("--dataset-config", help="The dataset's configuration, e.g. wikitext-2-raw-v1.")
@click.option("--split", default="train", show_default=True, help="The dataset split.")
@click.option("--column", default="text", show_default=True, help="The dataset column holding text.")
@click.option("--data-files", multiple=True, help="Local files for --dataset text.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--memory", metavar="SIZE", help="Count in chunks within this much working memory (e.g. 2G, 512M), "
              "merging sorted runs on disk (in $TMPDIR), for corpora too large to count at once.  [default: count in memory]")
@click.option("--from-arpa", "from_arpa", type=click.Path(path_type=Path),
              help="Import an ARPA model (e.g. KenLM's lmplz output, .arpa or .arpa.gz) instead of counting "
              "text: its order and vocabulary come from the file, its words must be --tokens' tokens.")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="Count on this machine, or on Apache Spark (pip install -e \".[spark]\"; needs Java 17+).")
@click.option("--spark-master", metavar="URL", help="With --engine spark: the Spark master (spark://host:7077, "
              "yarn, k8s://...).  [default: local[*], every core of this machine]")
@click.option("--spark-work", metavar="DIR", help="With --engine spark: where the Parquet count tables go and stay "
              "(any path the executors and this machine reach, e.g. hdfs://...).  [default: a temporary folder]")
@click.option("--verbose", is_flag=True, help="With --engine spark: show Spark's own log and progress bars.")
@json_option
@friendly_errors
def build(source, output, order, tokens, lowercase, min_count, heldout_fraction, dataset, dataset_config, split, column, data_files, progress, memory, from_arpa, engine, spark_master, spark_work, verbose, as_json):
    """Build a model from every .txt file under SOURCE (the last 5% of each held out).

    \b
    Example:
      CORPORA_MIRROR=../shared/corpora/books ngram build corpora/
      ngram build corpora/ -o trigram.ngram --order 3 --lowercase
      ngram build corpora/ -o gpt2-tokens.ngram --tokens gpt2
      ngram build corpora/ -o small.json.gz --order 2   # gzip JSON, for a browser
      ngram build big-corpus/ -o big.ngram --memory 2G  # bounded memory, like lmplz -S
      ngram build --from-arpa kenlm.arpa -o kenlm.ngram  # probabilities, not counts
      ngram build corpora/ -o books.ngram --engine spark  # count on Spark (local[*])
    """
    if from_arpa is not None:
        return build_from_arpa(from_arpa, source, dataset, output, tokens, lowercase, progress, as_json)
    check_build_arguments(order, min_count, heldout_fraction)
    if engine != "spark" and (spark_master or spark_work or verbose):
        raise UserError("--spark-master, --spark-work and --verbose go with --engine spark")
    if engine == "spark":
        return build_on_spark(source, output, order, tokens, lowercase, min_count, heldout_fraction, dataset,
                              dataset_config, split, column, data_files, memory, spark_master, spark_work, verbose,
                              progress, as_json)
    budget = parse_memory(memory) if memory is not None else None
    if output is not None and output.is_dir() and not is_array_model(output):
        raise UserError(f"{output} is a folder that holds no model; give a new name such as {output / 'model.ngram'}")
    if dataset:
        corpus: Corpus | Path = dataset_corpus(dataset, dataset_config, split, column, data_files or None, heldout_fraction)
    elif source is None:
        raise UserError("give a folder of .txt files (e.g. corpora/) or --dataset NAME")
    else:
        corpus = source
    started = time.perf_counter()
    model = NgramModel.build(corpus, order, tokens, lowercase, min_count, heldout_fraction, progress=progress, memory=budget)
    announce_saving(progress, budget)
    path = save_model(model, output or default_model_path())
    summary = {**model.stats(), "model": str(path), "file_bytes": model_bytes(path), "seconds": round(time.perf_counter() - started, 2)}
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"Built a {order}-gram model from {plural(summary['documents'], 'document')}, "
        f"{plural(summary['training_tokens'], 'token')} ({plural(summary['nodes'], 'trie node')}, "
        f"vocabulary {summary['vocabulary']:,}) in {summary['seconds']} s."
    )
    click.echo(f"Saved to {path} ({summary['file_bytes'] / 1e6:.1f} MB).")


def build_on_spark(source, output, order, tokens, lowercase, min_count, heldout_fraction, dataset, dataset_config,
                   split, column, data_files, memory, master, work, verbose, progress, as_json) -> None:
    """`ngram build --engine spark`: count on Spark (`ngram.spark`), save as any build does."""
    from . import spark as spark_build

    if memory is not None:
        raise UserError("--memory is for the local engine; Spark's memory is set in Spark's configuration")
    if output is not None and output.is_dir() and not is_array_model(output):
        raise UserError(f"{output} is a folder that holds no model; give a new name such as {output / 'model.ngram'}")
    if source is None and not dataset:
        raise UserError("give a folder of .txt files (e.g. corpora/), a glob or a URL, or --dataset NAME")
    what = spark_build.Source(None if dataset else str(source), dataset, dataset_config, split, column,
                              tuple(data_files))
    started = time.perf_counter()
    model, report = spark_build.build_model(what, order, tokens, lowercase, min_count, heldout_fraction,
                                            master or spark_build.DEFAULT_MASTER, work, verbose, progress=progress)
    counting.Stages(counting.SPARK_STAGES, progress).banner("Saving")
    path = save_model(model, output or default_model_path())
    summary = {**model.stats(), "model": str(path), "file_bytes": model_bytes(path), "engine": "spark",
               "spark_master": report.master, "count_tables": report.tables if work else None,
               "spark_startup_seconds": round(report.startup_seconds, 2),
               "spark_counting_seconds": round(report.counting_seconds, 2),
               "assembly_seconds": round(report.assembly_seconds, 2), "seconds": round(time.perf_counter() - started, 2)}
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"Built a {order}-gram model on Spark ({report.master}) from {plural(summary['documents'], 'document')}, "
        f"{plural(summary['training_tokens'], 'token')} ({plural(summary['nodes'], 'trie node')}, "
        f"vocabulary {summary['vocabulary']:,}) in {summary['seconds']} s ({summary['spark_startup_seconds']} s starting Spark)."
    )
    if work:
        click.echo(f"Parquet count tables in {report.tables}.")
    click.echo(f"Saved to {path} ({summary['file_bytes'] / 1e6:.1f} MB).")


def build_from_arpa(arpa_path: Path, source, dataset, output, tokens: str, lowercase: bool, progress: bool,
                    as_json: bool) -> None:
    """`ngram build --from-arpa`: read the ARPA file into a model folder (written atomically)."""
    if source is not None or dataset:
        raise UserError("--from-arpa reads the model from the ARPA file: give no SOURCE or --dataset")
    if output is not None and output.is_dir() and not is_array_model(output):
        raise UserError(f"{output} is a folder that holds no model; give a new name such as {output / 'model.ngram'}")
    if output is not None and is_json_path(output):
        raise UserError("an imported ARPA model is saved as a model folder; give -o a name not ending in .json.gz")
    from tqdm import tqdm

    from .backoff import import_arpa

    started = time.perf_counter()
    with tqdm(desc="reading ARPA", unit=" lines", unit_scale=True, disable=not progress, leave=False) as bar:
        model = import_arpa(arpa_path, get_tokenizer(tokens, lowercase), bar)
    path = save_model(model, output or default_model_path())
    summary = {**model.stats(), "arpa": str(arpa_path), "model": str(path), "file_bytes": model_bytes(path),
               "seconds": round(time.perf_counter() - started, 2)}
    if as_json:
        echo_json(summary)
        return
    counts = ", ".join(f"{n:,} {k}-grams" for k, n in summary["ngrams_per_order"].items())
    click.echo(f"Imported a {model.order}-gram ARPA model from {elide(str(arpa_path))}: {counts} "
               f"(vocabulary {summary['vocabulary']:,}) in {summary['seconds']} s.")
    click.echo(f"Saved to {path} ({summary['file_bytes'] / 1e6:.1f} MB). It holds probabilities, not counts.")


@main.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-k", "--top", "k", type=click.IntRange(1), default=10, show_default=True, help="How many next tokens.")
@smoothing_option
@click.option("--example/--no-example", default=True, show_default=True, help="Show a corpus sentence where the context occurs.")
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def predict(args, k, smoothing, example, as_json):
    """The most likely next tokens after a context: [MODEL] CONTEXT.

    \b
    Example:
      ngram predict "It was a dark and stormy"
      ngram predict model.ngram "I want to" -k 5 --json
    """
    model, context = model_and_text(args, "context")
    prediction = model.predict(context, k=k, smoothing=smoothing, example=example)
    check_probabilities([c.probability for c in prediction.candidates]  # never print NaN as a probability
                        + [prediction.end_of_sentence, prediction.unknown_word], prediction.smoothing, "the prediction")
    if as_json:
        echo_json(prediction.to_dict())
        return
    click.echo("\n".join(prediction_lines(model, prediction, smoothing)))


def prediction_lines(model: NgramModel, prediction: Prediction, smoothing: str) -> list[str]:
    """`ngram predict` as a person reads it: the context as the model saw it, the ranked
    words, what is left for the end of the sentence and unknown words, and why."""
    show = model.tokenizer.show
    smoothing = prediction.smoothing  # the method used: "arpa" for a model imported from an ARPA file
    shown = show(prediction.matched_context) or "(no context: unigrams)"
    column = f"p({smoothing})" if smoothing != "backoff" else "score"
    lines = [
        f"Context: {elide(show(prediction.context)) or '(none)'}",
        f"Matched: {shown}  ({describe_match(shown, prediction)})",
        f"{'#':>3}  {'token':<16} {'count':>9}  {column:>10}  order",
    ]
    for i, c in enumerate(prediction.candidates, 1):
        count = f"{c.count:>9,}" if smoothing != "arpa" else f"{'-':>9}"  # an ARPA model has no counts
        lines.append(f"{i:>3}  {model.tokenizer.display(c.token):<16} {count}  {c.probability:>10.4f}  {c.order}")
    lines.append(
        f"Not listed: end of sentence ({EOS}) {prediction.end_of_sentence:.4f}, "
        f"an unknown word ({UNK}) {prediction.unknown_word:.4f}"
    )
    lines += [f"Note: {note}" for note in prediction.notes]
    if smoothing == "backoff":
        lines.append("Note: ranked by stupid backoff scores; they are not probabilities and do not sum to 1.")
    if prediction.example:
        lines.append(f"Why: “{prediction.example}”")
    elif prediction.no_example:
        lines.append(f"Why: no example sentence — {prediction.no_example}")
    return lines


@main.command()
@click.argument("args", nargs=-1)
@click.option("--depth", type=click.IntRange(0), default=2, show_default=True, help="Levels shown below the context.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Children shown per node (most frequent first).")
@click.option("--sentence-start", is_flag=True, help="Only where the context begins a sentence (the path starts at <s>).")
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def show(args, depth, top, sentence_start, as_json):
    """Show the trie under a context as the nested object it is: [MODEL] [CONTEXT].

    Each node shows how often its n-gram occurred and after how many different
    words; no CONTEXT (or "") shows the root's most frequent tokens. --json gives
    every node as {"token", "count", "continuation", "children", "more"}.

    \b
    Example:
      ngram show "I want to" --depth 2 --top 5
      ngram show model.json.gz "" --depth 1 --json
    """
    model_path, context = show_arguments(args)
    model = load_model(model_path)
    data = model.subtree(context, depth=depth, top=top, sentence_start=sentence_start)
    if model.trie.kind == ARPA_KIND:
        data["note"] = NO_COUNTS + "; the tree shows which n-grams it lists"
        if not as_json:
            click.echo(f"Note: {data['note']}.")
    if as_json:
        echo_json(data)
        return
    click.echo(render_subtree(data, "word" if model.tokenizer.name == "words" else "token"))


def show_arguments(args: tuple[str, ...]) -> tuple[str | None, str]:
    """Split `[MODEL] [CONTEXT]`: one argument is the model if it is a model file, else the context."""
    if len(args) > 2:
        raise UserError(f"expected [MODEL] [CONTEXT], got {len(args)} arguments")
    if len(args) == 2:
        return args[0], args[1]
    if args and is_model_file(args[0]):
        return args[0], ""
    return None, args[0] if args else ""


@main.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--length", type=click.IntRange(1), default=3, show_default=True, help="Tokens per phrase.")
@click.option("-k", "--top", "k", type=click.IntRange(1), default=5, show_default=True, help="How many phrases.")
@smoothing_option
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def complete(args, length, k, smoothing, as_json):
    """Rank whole phrases that could follow a context: [MODEL] CONTEXT.

    \b
    Example:
      ngram complete "It was the best of" -n 3
    """
    model, context = model_and_text(args, "context")
    phrases = model.complete(context, length=length, k=k, smoothing=smoothing)
    used = "arpa" if model.trie.kind == ARPA_KIND else smoothing  # an imported ARPA model scores by its own table
    check_probabilities([p.probability for p in phrases], used, "the completion")
    if as_json:
        echo_json([{"tokens": p.tokens, "text": p.text, "probability": p.probability} for p in phrases])
        return
    for i, p in enumerate(phrases, 1):
        click.echo(f"{i:>3}  {p.probability:.5f}  {elide(context)} … {model.tokenizer.display_text(p.text)}")


@main.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--max-tokens", type=click.IntRange(1), default=40, show_default=True)
@click.option("--greedy", is_flag=True, help="Always take the most likely token.")
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(0), default=40, show_default=True, help="Sample only among the k most likely tokens (0: all).")
@click.option("--seed", type=int, default=None, help="Same seed, same text.")
@smoothing_option
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def generate(args, max_tokens, greedy, temperature, top_k, seed, smoothing, as_json):
    """Continue a prompt, token by token: [MODEL] PROMPT.

    \b
    Example:
      ngram generate "It was a dark and stormy" --seed 1
      ngram generate "Call me" --greedy -n 20
    """
    model, prompt = model_and_text(args, "prompt")
    tokens = model.generate(prompt, max_tokens, temperature, top_k or None, seed, greedy, smoothing)
    text = model.render(tokens)
    if as_json:
        echo_json({"prompt": prompt, "tokens": tokens, "text": text, "seed": seed, "greedy": greedy})
        return
    click.echo(continue_text(model.tokenizer, elide(prompt), text))


@main.command()
@click.argument("args", nargs=-1)
@click.option("--smoothing", type=click.Choice(["kn", "addk", "mle", "all"]), default="all", show_default=True)
@click.option("--order", type=int, default=None, help="Score with a lower order than the model's.")
@click.option("--add-k", "add_k", type=float, default=1.0, show_default=True, help="k for add-k smoothing.")
@click.option("--per-token", is_flag=True,
              help="Also list every token with its log10 probability and the longest n-gram it matched "
              "(as KenLM's query -v word), under the first smoothing chosen (Kneser-Ney for 'all').")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def perplexity(args, smoothing, order, add_k, per_token, progress, as_json):
    """Perplexity of a text: [MODEL] [TEXT_FILE] (default: the model's held-out text).

    \b
    Example:
      ngram perplexity
      ngram perplexity model.ngram ../shared/corpora/eval/wikitext-2/wiki.test.raw
      ngram perplexity model.ngram story.txt --smoothing kn --per-token
    """
    if order is not None and order < 1:
        raise UserError(f"--order must be at least 1, got {order}")
    model_path, text_path = perplexity_paths(args)
    text = read_text_argument(text_path) if text_path else None  # a bad text file is refused before loading
    model = load_model(model_path)
    text = text or model.heldout_text()
    methods = ["kn", "addk", "mle"] if smoothing == "all" else [smoothing]
    if model.trie.kind == ARPA_KIND and smoothing in ("all", "kn"):
        methods = ["arpa"]  # an imported ARPA model: its own back-off probabilities, no counts to smooth
    results = [
        model.score(text, m, order, progress=progress, **({"k": add_k} if m == "addk" else {}))
        for m in methods
    ]
    for r in results:
        check_score(r, "the perplexity")
    options = {"k": add_k} if methods[0] == "addk" else {}
    tokens = score_tokens(model, text, methods[0], order, **options) if per_token else None
    if as_json:
        listed = {"per_token": {"smoothing": methods[0], "tokens": [t.to_dict() for t in tokens]}} if per_token else {}
        echo_json({"text": text_path or "held-out split", "results": [r.to_dict() for r in results], **listed})
        return
    click.echo(describe_text(text_path, results[0], model.tokenizer.sequence))
    for r in results:
        click.echo(f"  {describe_perplexity(r)}")
    if per_token:
        click.echo(f"\nEvery token under {smoothing_label(methods[0], add_k)} (log10 p; n-gram: the longest one matched):")
        click.echo(render_token_scores(tokens))


def render_token_scores(tokens) -> str:
    """One line a token: sentence, token (and <unk> when the model did not know it), log10 p, n-gram."""
    shown = [t.token if t.model_token == t.token else f"{t.token} ({t.model_token})" for t in tokens]
    width = max([len(s) for s in shown] + [5])
    lines = [f"{'sent':>5}  {'token':<{width}}  {'log10 p':>9}  n-gram"]
    for t, token in zip(tokens, shown):
        lines.append(f"{t.sentence:>5}  {token:<{width}}  {t.log10_prob:>9.4f}  {t.matched_order}")
    return "\n".join(lines)


def describe_text(text_path: str | None, first: Score, sequence: str) -> str:
    """What was scored: where the text is from, its tokens, sequences, words, bytes and OOV."""
    where = elide(text_path) if text_path else "held-out split of the corpus"
    return (
        f"Text: {where} — {plural(first.tokens, 'token')} in {plural(first.setting['sentences'], sequence)}, "
        f"{plural(first.units.words, 'word')}, {plural(first.units.bytes, 'byte')}; "
        f"OOV {first.oov:,} ({first.oov_rate:.2%})"
    )


def describe_perplexity(r: Score) -> str:
    """One line per smoothing: perplexity per token, per word and bits per byte."""
    name, order = smoothing_label(r.setting["smoothing"]), r.setting["order"]
    if r.zero_prob:
        return (
            f"{name:<11} order {order}: perplexity inf — {r.zero_prob:,} of {plural(r.tokens, 'token')} had probability 0 "
            f"(over the other tokens: {r.per_token_nonzero:,.1f})"
        )
    return (
        f"{name:<11} order {order}: perplexity {r.per_token:,.1f} per token, {r.per_word:,.1f} per word, "
        f"{r.bits_per_byte:.3f} bits/byte"
    )


@main.command()
@click.argument("model_path", required=False, type=click.Path(path_type=Path))
@click.option("--arpa", "arpa_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the model as an ARPA file (log10 probabilities and back-off weights).")
@click.option("--trie-json", "trie_json", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the nested-dict trie as JSON (gzip if FILE ends in .gz), for a browser.")
@click.option("--context", default="", help="With --trie-json: only the subtree under this context (as `ngram show` reads it).")
@click.option("--depth", type=click.IntRange(0), default=None, help="With --trie-json: levels kept below the context [default: all].")
@click.option("--sentence-start", is_flag=True, help="With --trie-json --context: only where the context begins a sentence.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def export(model_path, arpa_path, trie_json, context, depth, sentence_start, progress, as_json):
    """Write a model for other tools: [MODEL] --arpa FILE, or [MODEL] --trie-json FILE.

    --arpa writes standard ARPA, which KenLM (build_binary, query), SRILM and Kaldi
    read: interpolated modified Kneser-Ney, <unk> included (a model imported with
    `ngram build --from-arpa` writes back what it stores). --trie-json writes the trie
    as the nested object {"I": {"want": {"to": ...}}}, counts under "" and "\\0": the
    whole trie (a .json.gz of it loads back as a model), or with --context and --depth
    the part under a context. The format is an option of its own because --json, as in
    every ngram command, prints a machine-readable summary of what was written.

    \b
    Example:
      ngram export --arpa books.arpa
      ngram export model.ngram --trie-json want.json --context "I want" --depth 2 --json
    """
    from .export import arpa_size, export_arpa, export_trie_json

    if (arpa_path is None) == (trie_json is None):
        raise UserError("give one output: --arpa FILE or --trie-json FILE")
    if arpa_path is not None and (context or depth is not None or sentence_start):
        raise UserError("--context, --depth and --sentence-start go with --trie-json; an ARPA file holds the whole model")
    model = load_model(model_path)
    if arpa_path is not None:
        from tqdm import tqdm

        with tqdm(total=arpa_size(model), desc="writing ARPA", unit=" n-grams", unit_scale=True,
                  disable=not progress, leave=False) as bar:
            summary = export_arpa(model, arpa_path, bar)
    else:
        summary = export_trie_json(model, trie_json, context, depth, sentence_start)
    summary = {"model": str(model_path or default_model_path()), **summary}
    if as_json:
        echo_json(summary)
        return
    if summary["format"] == "arpa":
        counts = ", ".join(f"{n:,} {k}-grams" for k, n in summary["ngrams_per_order"].items())
        click.echo(f"Wrote {summary['output']} ({summary['bytes'] / 1e6:.1f} MB): {summary['probabilities']} "
                   f"probabilities, {counts}.")
    else:
        part = "the whole trie" if summary["whole_trie"] else f"the trie under “{' '.join(summary['context'])}”"
        click.echo(f"Wrote {summary['output']} ({summary['bytes'] / 1e6:.1f} MB): {part}, "
                   f"{plural(summary['nodes'], 'node')}.")
    if summary.get("note"):
        click.echo(f"Note: {summary['note']}.")


@main.command()
@click.argument("model_path", required=False, type=click.Path(path_type=Path))
@click.option("--memory/--no-memory", default=True, show_default=True, help="Show the trie's memory (its arrays' bytes).")
@json_option
@friendly_errors
@diagnose_damage()  # a crash on a damaged model: one clear error
def stats(model_path, memory, as_json):
    """Size of a model: nodes, n-grams per order, vocabulary, memory, file size.

    \b
    Example:
      ngram stats
      ngram stats trigram.ngram --json
    """
    path = model_path or default_model_path()
    started = time.perf_counter()
    model = load_model(path)
    summary = {**model.stats(), "model": str(path), "file_bytes": model_bytes(path), "load_seconds": round(time.perf_counter() - started, 3)}
    if memory:
        summary["memory_bytes"] = model.trie.nbytes()
        summary["bytes_per_node"] = round(summary["memory_bytes"] / summary["nodes"], 1)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"Model: {path} ({summary['file_bytes'] / 1e6:.1f} MB on disk, loaded in {summary['load_seconds']} s)")
    click.echo(f"Order {model.order}, tokenizer {model.tokenizer.describe()}, vocabulary {summary['vocabulary']:,}")
    click.echo(f"Trie nodes: {summary['nodes']:,}")
    for k, n in summary["ngrams_per_order"].items():
        click.echo(f"  {k}-grams: {n:,}")
    if memory:
        click.echo(f"Memory: {summary['memory_bytes'] / 1e6:.1f} MB ({summary['bytes_per_node']} bytes per node)")
    if model.corpus:
        click.echo(
            f"Built from {plural(summary['documents'], 'document')} in {model.corpus.get('location')}; "
            f"held out: last {model.corpus.get('heldout_fraction', 0):.0%} of each"
        )
