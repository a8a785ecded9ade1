"""The `transformer` command: a thin layer over the Python API in transformer/__init__.py.

    transformer generate "It was a dark and stormy" --seed 1
    transformer predict "The capital of France is" -k 10
    transformer perplexity book.txt --window 1024 --stride 512
    transformer perplexity book.txt --context 4
    transformer inspect "The cat sat on the" --png attention.png
    transformer tokenize "Hello, world!"

Every command takes --model NAME_OR_DIR and --json. The default, `auto`, is GPT-2 small
when it is in the Hugging Face cache or can be downloaded, else the small model bundled
with this package (a one-line notice says so), so every example works offline.
`tokenize` needs no weights at all. Arguments are checked before any model loads;
mistakes print one line, "Error: ...", and exit 1; Ctrl-C exits 130.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from corpora.common import UserError
from corpora.cli_common import echo_json, elide, friendly_errors, plural, version_option
from corpora.documents import read_text_argument
from corpora.validate import check_finite_values
from corpora.tokenizers.bpe import GPT2_TOKENIZER_DIR, BPETokenizer, gpt2_tokenizer, tokenizer_label

from .config import GPT2Config
from .inspection import (
    MAX_PNG_POSITIONS,
    attention_maps,
    attention_summary,
    describe_inspection,
    logit_lens,
    save_attention_png,
    token_text,
    top_next_tokens,
)
from .history import history_dict, history_markdown, read_history
from .model import load_model
from .sample import Sampling, fit_to_window, generate_ids, stream_text
from corpora.units import Score

from .score import perplexity as text_perplexity
from .score import window_and_stride as default_window_and_stride
from .weights import (
    AUTO_NAME,
    BUNDLED_MODEL,
    BUNDLED_NAME,
    CONFIG_FILE,
    GPT2_SMALL,
    choose_auto_model,
    resolve_model_dir,
    resolve_tokenizer_dir,
)

MODEL_HELP = (
    "auto: GPT-2 small if it is in the Hugging Face cache or can be downloaded, else the bundled "
    "model; bundled: the small GPT-2 trained on the default books, shipped with this package; "
    "or a model folder (config.json, model.safetensors, tokenizer files), or a Hugging Face name."
)
TOKENIZER_MODEL_HELP = (
    "Whose tokenizer: gpt2 (GPT-2's, shipped with this package), bundled (the bundled model's), "
    "auto (the one --model auto would use), or any folder holding encoder.json + vocab.bpe "
    "or vocab.json + merges.txt (no weights needed)."
)

#: Prompts longer than this many characters are shown with their middle cut out.
PROMPT_SHOWN = 200


def model_option(func):
    """--model/-m for every command that runs a model; `auto` by default, so examples work offline."""
    return click.option("--model", "-m", "model_name", default=AUTO_NAME, show_default=True, help=MODEL_HELP)(func)


def json_option(func):
    """--json: the result as JSON on stdout, for scripts (notices stay on stderr)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


# ------------------------------------------------------------------ checking, then loading


def check_prompt(prompt: str) -> None:
    """Refuse an empty prompt at once, before anything loads."""
    if not prompt.strip():
        raise UserError("the prompt is empty; give some text, e.g. \"It was a dark and stormy\"")


def find_model(model_name: str) -> tuple[str, Path, GPT2Config]:
    """--model as (the name to call it by, its folder, its shape), without loading weights.

    Reading config.json is instant, so every option that depends on the model's shape
    (--window, --context, --layer) is checked before the weights load. `auto` is
    resolved here, once, to `gpt2` or `bundled`.
    """
    if model_name == AUTO_NAME:
        name, folder = choose_auto_model()
    else:
        name, folder = model_name, resolve_model_dir(model_name)
    return name, folder, GPT2Config.from_json(folder / CONFIG_FILE)


def owner_name(name: str, folder: Path) -> str:
    """What to call a model in labels: its folder's name (books-gpt2), or its Hub name."""
    if name == BUNDLED_NAME:
        return BUNDLED_MODEL.name
    return folder.name if Path(name).expanduser().is_dir() else name


def encode_prompt(tokenizer: BPETokenizer, prompt: str) -> list[int]:
    """Token ids of a prompt (special tokens like <|endoftext|> are allowed)."""
    return tokenizer.encode(prompt, allowed_special="all")


def keep_last(ids: list[int], keep: int, why: str) -> list[int]:
    """The last `keep` ids; when some had to go, a notice on stderr says how many stay and why.

    Every command that cuts a prompt says so in these words, so a user always knows
    the model did not see the whole text.
    """
    if keep < len(ids):
        click.echo(f"Notice: the prompt has {plural(len(ids), 'token')}; keeping the last {keep:,} {why}.", err=True)
    return ids[len(ids) - keep:]


def in_window(ids: list[int], n_ctx: int) -> list[int]:
    """The last n_ctx ids (the model's context window), with a notice if any had to go."""
    return keep_last(ids, min(len(ids), n_ctx), f"(the model's {n_ctx:,}-token context window)")


def shown_prompt(prompt: str) -> str:
    """A prompt as one quoted line of output: long ones keep their start and end."""
    return '"' + elide(prompt, PROMPT_SHOWN) + '"'


def show(token: str) -> str:
    """A token in quotes (so leading spaces show) with newlines and tabs escaped."""
    return "'" + token.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"


@click.group()
@version_option
def main() -> None:
    """GPT-2 small in plain NumPy: generate, predict, score and look inside.

    Works offline out of the box: --model auto (the default) falls back to the small
    model bundled with this package when GPT-2 small cannot be had.

    \b
    Example:
      transformer generate "It was a dark and stormy" --seed 1
    """


@main.command()
@click.argument("prompt")
@model_option
@click.option("--max-new-tokens", "-n", type=click.IntRange(0), default=50, show_default=True, help="Tokens to add at most.")
@click.option("--temperature", "-t", type=click.FloatRange(0), default=0.8, show_default=True,
              help="0 = greedy (always the likeliest token); lower: more predictable, higher: more varied.")
@click.option("--top-k", type=click.IntRange(0), default=40, show_default=True, help="Draw only from the k most likely tokens (0 = all).")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True, help="Draw only from the most likely tokens holding this much probability.")
@click.option("--greedy", is_flag=True, help="Always take the most likely token (same as --temperature 0).")
@click.option("--seed", type=int, default=None, help="Random seed: the same seed gives the same text.")
@click.option("--no-stop", is_flag=True, help="Keep going past <|endoftext|>.")
@json_option
@friendly_errors
def generate(prompt, model_name, max_new_tokens, temperature, top_k, top_p, greedy, seed, no_stop, as_json):
    """Continue PROMPT, printing tokens as they are generated.

    \b
    Example:
      transformer generate "It was a dark and stormy" -n 40 --seed 1
      transformer generate "The meaning of life is" --greedy --model ./my-gpt2
    """
    check_prompt(prompt)
    _, folder, config = find_model(model_name)
    model, tokenizer = load_model(folder)
    ids = encode_prompt(tokenizer, prompt)
    keep, _ = fit_to_window(len(ids), max_new_tokens, config.n_ctx)
    ids = keep_last(ids, keep, f"so that it and the new tokens fit the {config.n_ctx:,}-token window")
    sampling = Sampling(0.0 if greedy else temperature, top_k, top_p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notice above already said it
        stream = generate_ids(model, ids, max_new_tokens, sampling, seed, None if no_stop else tokenizer.eot_id)
        if as_json:
            new = list(stream)
            echo_json({"prompt": prompt, "prompt_ids": ids, "new_ids": new, "text": tokenizer.decode(new),
                       "sampling": {"temperature": sampling.temperature, "top_k": top_k, "top_p": top_p,
                                    "seed": seed}})
            return
        click.echo(prompt if len(prompt) <= PROMPT_SHOWN else elide(prompt, PROMPT_SHOWN), nl=False)
        try:
            for piece in stream_text(tokenizer, stream):
                click.echo(piece, nl=False)  # click.echo flushes: each piece shows at once
        finally:
            click.echo()  # end the line, also on Ctrl-C, so the shell prompt starts afresh


@main.command()
@click.argument("prompt")
@model_option
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many tokens to list.")
@json_option
@friendly_errors
def predict(prompt, model_name, k, as_json):
    """List the K most likely next tokens after PROMPT, with probabilities.

    \b
    Example:
      transformer predict "The capital of France is" -k 5
    """
    check_prompt(prompt)
    name, folder, config = find_model(model_name)
    model, tokenizer = load_model(folder)
    ids = in_window(encode_prompt(tokenizer, prompt), config.n_ctx)
    label = tokenizer_label(tokenizer, owner_name(name, folder))
    best = top_next_tokens(model, ids, k)
    check_finite_values((p for _, p in best), "the forward pass")  # never print NaN as a probability
    rows = [{"id": i, "token": token_text(tokenizer, i), "probability": p} for i, p in best]
    if as_json:
        echo_json({"prompt": prompt, "model": name, "tokenizer": label, "prompt_ids": ids, "next": rows})
        return
    click.echo(f"next token after {shown_prompt(prompt)}  ({plural(len(ids), 'token')} seen; {label}):")
    for rank, row in enumerate(rows, 1):
        click.echo(f"{rank:>3}  {row['probability']:8.4f}  {row['id']:>6}  {show(row['token'])}")


@main.command()
@click.argument("text_file", type=click.Path(path_type=Path))
@model_option
@click.option("--window", type=click.IntRange(2), default=None, help="Tokens per window (default: the model's context window, 1024 for GPT-2 small).")
@click.option("--stride", type=click.IntRange(1), default=None, help="Tokens between window starts (default: half the window).")
@click.option("--context", type=click.IntRange(1), default=None,
              help="Score every token with only the previous N tokens visible (instead of --window/--stride).")
@click.option("--no-bos", is_flag=True, help="Do not put <|endoftext|> in front (the first token is then not scored).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@json_option
@friendly_errors
def perplexity(text_file, model_name, window, stride, context, no_bos, progress, as_json):
    """Perplexity of TEXT_FILE with a sliding window, per token, word and byte.

    With --context N every token sees only the N tokens before it, as an n-gram model of
    order N + 1 does (reported as window N + 1, stride 1, which it equals).

    \b
    Example:
      transformer perplexity ../shared/corpora/eval/wikitext-2/wiki.test.raw --stride 512
      transformer perplexity ../shared/corpora/eval/wikitext-2/wiki.test.raw --context 4
    """
    if context is not None and (window is not None or stride is not None):
        raise UserError("give either --context or --window/--stride, not both")
    text = read_text_argument(text_file)
    name, folder, config = find_model(model_name)
    if context is not None and context > config.n_ctx:
        raise UserError(f"--context {context} is larger than the model's context window ({config.n_ctx})")
    if context is None:
        window, stride = window_and_stride(window, stride, config.n_ctx)
    model, tokenizer = load_model(folder)
    show_bar = sys.stderr.isatty() if progress is None else progress
    if context is not None:
        result = text_perplexity(model, tokenizer, text, bos=not no_bos, progress=show_bar, context=context)
        how = f"context {context}: each token sees at most the {context} tokens before it"
    else:
        result = text_perplexity(model, tokenizer, text, window, stride, bos=not no_bos, progress=show_bar)
        how = f"window {result.setting['window']}, stride {result.setting['stride']}"
    report_perplexity(text_file, name, result, how, as_json, tokenizer_label(tokenizer, owner_name(name, folder)))


def window_and_stride(window: int | None, stride: int | None, n_ctx: int) -> tuple[int, int]:
    """--window and --stride with their defaults filled in (score.window_and_stride), checked against each other."""
    if window is not None and window > n_ctx:
        raise UserError(f"--window {window} is larger than the model's context window ({n_ctx})")
    window, stride = default_window_and_stride(window, stride, n_ctx)
    if stride >= window:
        raise UserError(f"--stride ({stride}) must be smaller than --window ({window}), or the first "
                        f"token of each window would have no context")
    return window, stride


def report_perplexity(text_file: Path, model_name: str, result: Score, how: str, as_json: bool,
                      tokenizer: str = "GPT-2's BPE, 50,257 tokens") -> None:
    """Print a Score as JSON or in words; `how` says how the text was read and `tokenizer`
    names the tokens the per-token figure counts."""
    data = {"file": str(text_file), "model": model_name, "tokenizer": tokenizer, **result.to_dict(), **result.setting,
            "words": result.units.words, "bytes": result.units.bytes,  # the keys this command always printed
            "perplexity_per_token": result.per_token, "perplexity_per_word": result.per_word}
    if as_json:
        echo_json(data)
        return
    click.echo(f"file: {text_file}  ({how})")
    click.echo(f"tokens {result.tokens:,}   words {result.units.words:,}   bytes {result.units.bytes:,}   "
               f"NLL {result.nll:,.2f} nats")
    click.echo(f"perplexity per token {result.per_token:.3f}  ({tokenizer}; compare only with the same tokenizer)")
    click.echo(f"perplexity per word  {result.per_word:.3f}  (whitespace-separated words)")
    click.echo(f"bits per byte        {result.bits_per_byte:.4f}  (UTF-8 bytes; comparable across tokenizers)")


def check_png_path(png: Path | None) -> None:
    """Refuse a --png path that cannot be written, before anything loads."""
    if png is None:
        return
    if png.is_dir():
        raise UserError(f"--png {png} is a folder; give a file name such as attention.png")
    if not png.parent.is_dir():
        raise UserError(f"--png {png}: the folder {png.parent} does not exist")


def check_layers(layers: tuple[int, ...], config: GPT2Config) -> None:
    """Every --layer must be one of the model's layers."""
    for layer in layers:
        if not 0 <= layer < config.n_layer:
            raise UserError(f"--layer {layer}: the model has layers 0..{config.n_layer - 1}")


@main.command(name="inspect")
@click.argument("prompt")
@model_option
@click.option("-k", "k", type=click.IntRange(1), default=5, show_default=True, help="Top tokens to show per layer.")
@click.option("--png", "png", type=click.Path(path_type=Path), default=None,
              help=f"Also draw the attention heatmaps (of the last {MAX_PNG_POSITIONS} positions at most) to this PNG file.")
@click.option("--layer", "layers", type=int, multiple=True, help="Draw only these layers in the PNG (repeatable).")
@json_option
@friendly_errors
def inspect_command(prompt, model_name, k, png, layers, as_json):
    """Show PROMPT's tokens, the next-token odds, the logit lens and attention.

    \b
    Example:
      transformer inspect "The Eiffel Tower is in the city of" --png attention.png
    """
    check_prompt(prompt)
    check_png_path(png)
    name, folder, config = find_model(model_name)
    check_layers(layers, config)
    model, tokenizer = load_model(folder)
    ids = in_window(encode_prompt(tokenizer, prompt), config.n_ctx)
    label = tokenizer_label(tokenizer, owner_name(name, folder))
    tokens = [token_text(tokenizer, i) for i in ids]
    lens = logit_lens(model, ids, k)
    maps = attention_maps(model, ids)
    summary = attention_summary(maps, tokens)
    drawn = min(len(ids), MAX_PNG_POSITIONS)
    if png:
        save_attention_png(maps, tokens, png, list(layers) or None)

    def name_of(i: int) -> str:
        return token_text(tokenizer, i)

    if as_json:
        echo_json({
            "prompt": prompt,
            "model": name,
            "tokenizer": label,
            **describe_inspection(tokenizer, ids, lens, summary),
            "png": str(png) if png else None,
            "png_positions": drawn if png else None,
        })
        return
    click.echo(f"prompt: {shown_prompt(prompt)}")
    click.echo(f"tokens ({plural(len(ids), 'token')}; {label}):")
    for pos, (i, t) in enumerate(zip(ids, tokens)):
        click.echo(f"  {pos:>4}  {i:>6}  {show(t)}")
    click.echo("next token:")
    for i, p in lens[-1]:
        click.echo(f"  {p:8.4f}  {show(name_of(i))}")
    click.echo("logit lens (residual stream at the last position, read through ln_f and wte):")
    for layer, row in enumerate(lens):
        where = "embedding" if layer == 0 else f"after block {layer - 1}"
        guesses = "  ".join(f"{show(name_of(i))} {p:.2f}" for i, p in row)
        click.echo(f"  {where:>16}: {guesses}")
    click.echo("attention (last position's strongest target; mean weight on previous / first token):")
    for row in summary:
        click.echo(f"  layer {row['layer']:>2} head {row['head']:>2}: -> {row['last_attends_to']:>3} "
                   f"{show(row['last_attends_to_token']):<14} {row['weight']:.2f}   "
                   f"prev {row['previous_token']:.2f}  first {row['first_token']:.2f}")
    if png:
        which = (f"the last {drawn} of {plural(len(ids), 'position')}" if drawn < len(ids)
                 else plural(drawn, "position"))
        click.echo(f"attention heatmaps ({which}) written to {png}")


@main.command()
@click.argument("text")
@click.option("--model", "-m", "model_name", default=GPT2_SMALL, show_default=True, help=TOKENIZER_MODEL_HELP)
@json_option
@friendly_errors
def tokenize(text, model_name, as_json):
    """Split TEXT into a model's BPE tokens and show their ids (no weights needed).

    \b
    Example:
      transformer tokenize "Hello, world! naïve café"
      transformer tokenize "Hello, world!" --model bundled
    """
    folder = resolve_tokenizer_dir(model_name)
    tokenizer = gpt2_tokenizer() if folder == GPT2_TOKENIZER_DIR else BPETokenizer.from_dir(folder)
    owner = BUNDLED_MODEL.name if folder == BUNDLED_MODEL else folder.name
    label = tokenizer_label(tokenizer, owner)
    ids = tokenizer.encode(text, allowed_special="all")
    if as_json:
        echo_json({"text": text, "tokenizer": label, "ids": ids, "tokens": [token_text(tokenizer, i) for i in ids]})
        return
    click.echo(f"{plural(len(ids), 'token')} ({label}), {plural(len(text.encode('utf-8')), 'byte')}")
    for i in ids:
        click.echo(f"{i:>6}  {show(token_text(tokenizer, i))}")


@main.command()
@model_option
@json_option
@friendly_errors
def history(model_name, as_json):
    """How a model trained here was made: every training segment and evaluation.

    Reads the model's training.json (written by `transformer train`): each segment
    (a run of the command, resumed from the last checkpoint) with its steps, time,
    threads and code, then the held-out loss and the copying test at every evaluation,
    as Markdown tables (the ones a model card shows).

    \b
    Example:
      transformer history --model bundled
      transformer history --model ~/.cache/my-run --json
    """
    _, folder, _ = find_model(model_name)
    record = read_history(folder)
    if as_json:
        echo_json(history_dict(record))
        return
    click.echo(history_markdown(record))


# The tokenizer's and the trainer's own commands (`transformer bpe learn ...`,
# `transformer train ...`) live in their own modules and join the group here.
from .bpe_cli import bpe as _bpe_group  # noqa: E402
from .train_cli import train as _train_command  # noqa: E402

main.add_command(_bpe_group)
main.add_command(_train_command)
