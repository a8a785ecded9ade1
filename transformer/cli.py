"""The `transformer` command: a thin layer over the Python API in transformer/__init__.py.

    transformer generate "It was a dark and stormy" --seed 1
    transformer predict "The capital of France is" -k 10
    transformer perplexity book.txt --window 1024 --stride 512
    transformer perplexity book.txt --context 4
    transformer inspect "The cat sat on the" --png attention.png
    transformer tokenize "Hello, world!"

Every command takes --model NAME_OR_DIR (default gpt2, fetched once into the Hugging
Face cache) and --json. Mistakes print one line, "Error: ...", and exit 1.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from corpora.common import UserError
from corpora.cli_common import echo_json, friendly_errors
from corpora.documents import decode_bytes, normalise_text

from .inspection import attention_maps, attention_summary, logit_lens, save_attention_png, top_next_tokens
from .model import load_model, load_tokenizer
from .sample import Sampling, fit_to_window, generate_ids, stream_text
from corpora.units import Score

from .score import perplexity as text_perplexity
from .score import window_and_stride as default_window_and_stride
from .weights import resolve_model_dir

MODEL_HELP = (
    "A model folder (config.json, model.safetensors, tokenizer files), a Hugging Face name, "
    "or 'bundled' (the small GPT-2 trained on the default books, shipped with this package)."
)


def model_option(func):
    return click.option("--model", "-m", "model_name", default="gpt2", show_default=True, help=MODEL_HELP)(func)


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids of a non-empty prompt (special tokens like <|endoftext|> are allowed)."""
    if not prompt.strip():
        raise UserError("the prompt is empty; give some text, e.g. \"It was a dark and stormy\"")
    return tokenizer.encode(prompt, allowed_special="all")


def last_window(ids: list[int], n_ctx: int) -> list[int]:
    """The last n_ctx ids, with a notice on stderr if any had to go."""
    if len(ids) > n_ctx:
        click.echo(f"Notice: the prompt has {len(ids)} tokens; using the last {n_ctx} (the context window).", err=True)
    return ids[-n_ctx:]


def token_text(tokenizer, token_id: int) -> str:
    """The text a token stands for; bytes that are only part of a character (emoji are
    often split over tokens) are shown as escapes like \\xf0."""
    return tokenizer.token_bytes(token_id).decode("utf-8", errors="backslashreplace")


def show(token: str) -> str:
    """A token in quotes (so leading spaces show) with newlines and tabs escaped."""
    return "'" + token.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"


@click.group()
def main() -> None:
    """GPT-2 small in plain NumPy: generate, predict, score and look inside.

    \b
    Example:
      transformer generate "It was a dark and stormy" --seed 1
    """


@main.command()
@click.argument("prompt")
@model_option
@click.option("--max-new-tokens", "-n", type=click.IntRange(0), default=50, show_default=True, help="Tokens to add at most.")
@click.option("--temperature", "-t", type=click.FloatRange(0), default=0.8, show_default=True, help="0 = greedy; lower is bolder, higher is wilder.")
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
    model, tokenizer = load_model(model_name)
    ids = encode_prompt(tokenizer, prompt)
    keep, _ = fit_to_window(len(ids), max_new_tokens, model.config.n_ctx)
    if keep < len(ids):
        click.echo(f"Notice: the prompt has {len(ids)} tokens; keeping the last {keep} so that it and "
                   f"the new tokens fit the {model.config.n_ctx}-token window.", err=True)
        ids = ids[len(ids) - keep:]
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
        click.echo(prompt, nl=False)
        for piece in stream_text(tokenizer, stream):
            click.echo(piece, nl=False)  # click.echo flushes: each piece shows at once
        click.echo()


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
    model, tokenizer = load_model(model_name)
    ids = last_window(encode_prompt(tokenizer, prompt), model.config.n_ctx)
    best = top_next_tokens(model, ids, k)
    rows = [{"id": i, "token": token_text(tokenizer, i), "probability": p} for i, p in best]
    if as_json:
        echo_json({"prompt": prompt, "prompt_ids": ids, "next": rows})
        return
    for rank, row in enumerate(rows, 1):
        click.echo(f"{rank:>3}  {row['probability']:8.4f}  {row['id']:>6}  {show(row['token'])}")


def read_text(path: Path) -> str:
    """A text file as a string; one-line errors for empty, binary or missing files."""
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = decode_bytes(path.read_bytes(), str(path))
    if text is None:
        raise UserError(f"{path} looks binary (it has NUL bytes), not text")
    text = normalise_text(text)
    if not text.strip():
        raise UserError(f"{path} is empty; there is nothing to score")
    return text


@main.command()
@click.argument("text_file", type=click.Path(path_type=Path))
@model_option
@click.option("--window", type=click.IntRange(2), default=None, help="Tokens per window (default: the model's context, 1024).")
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
    text = read_text(text_file)
    model, tokenizer = load_model(model_name)
    show_bar = sys.stderr.isatty() if progress is None else progress
    if context is not None:
        if context > model.config.n_ctx:
            raise UserError(f"--context {context} is larger than the model's context window ({model.config.n_ctx})")
        result = text_perplexity(model, tokenizer, text, bos=not no_bos, progress=show_bar, context=context)
        how = f"context {context}: each token sees at most the {context} tokens before it"
    else:
        window, stride = window_and_stride(window, stride, model.config.n_ctx)
        result = text_perplexity(model, tokenizer, text, window, stride, bos=not no_bos, progress=show_bar)
        how = f"window {result.setting['window']}, stride {result.setting['stride']}"
    report_perplexity(text_file, model_name, result, how, as_json)


def window_and_stride(window: int | None, stride: int | None, n_ctx: int) -> tuple[int, int]:
    """--window and --stride with their defaults filled in (score.window_and_stride), checked against each other."""
    if window is not None and window > n_ctx:
        raise UserError(f"--window {window} is larger than the model's context window ({n_ctx})")
    window, stride = default_window_and_stride(window, stride, n_ctx)
    if stride >= window:
        raise UserError(f"--stride ({stride}) must be smaller than --window ({window}), or the first "
                        f"token of each window would have no context")
    return window, stride


def report_perplexity(text_file: Path, model_name: str, result: Score, how: str, as_json: bool) -> None:
    """Print a Score as JSON or in words; `how` says how the text was read."""
    data = {"file": str(text_file), "model": model_name, **result.to_dict(), **result.setting,
            "words": result.units.words, "bytes": result.units.bytes,  # the keys this command always printed
            "perplexity_per_token": result.per_token, "perplexity_per_word": result.per_word}
    if as_json:
        echo_json(data)
        return
    click.echo(f"file: {text_file}  ({how})")
    click.echo(f"tokens {result.tokens:,}   words {result.units.words:,}   bytes {result.units.bytes:,}   "
               f"NLL {result.nll:,.2f} nats")
    click.echo(f"perplexity per token {result.per_token:.3f}  ({result.token_kind} tokens; compare only with the same tokenizer)")
    click.echo(f"perplexity per word  {result.per_word:.3f}  (whitespace-separated words)")
    click.echo(f"bits per byte        {result.bits_per_byte:.4f}  (UTF-8 bytes; comparable across tokenizers)")


@main.command(name="inspect")
@click.argument("prompt")
@model_option
@click.option("-k", "k", type=click.IntRange(1), default=5, show_default=True, help="Top tokens to show per layer.")
@click.option("--png", "png", type=click.Path(path_type=Path), default=None, help="Also draw the attention heatmaps to this PNG file.")
@click.option("--layer", "layers", type=int, multiple=True, help="Draw only these layers in the PNG (repeatable).")
@json_option
@friendly_errors
def inspect_command(prompt, model_name, k, png, layers, as_json):
    """Show PROMPT's tokens, the next-token odds, the logit lens and attention.

    \b
    Example:
      transformer inspect "The Eiffel Tower is in the city of" --png attention.png
    """
    model, tokenizer = load_model(model_name)
    ids = last_window(encode_prompt(tokenizer, prompt), model.config.n_ctx)
    tokens = [token_text(tokenizer, i) for i in ids]
    for layer in layers:
        if not 0 <= layer < model.config.n_layer:
            raise UserError(f"--layer {layer}: the model has layers 0..{model.config.n_layer - 1}")
    lens = logit_lens(model, ids, k)
    maps = attention_maps(model, ids)
    summary = attention_summary(maps, tokens)
    if png:
        save_attention_png(maps, tokens, png, list(layers) or None)
    def name(i: int) -> str:
        return token_text(tokenizer, i)

    if as_json:
        echo_json({
            "prompt": prompt,
            "tokens": [{"id": i, "token": t} for i, t in zip(ids, tokens)],
            "next": [{"id": i, "token": name(i), "probability": p} for i, p in lens[-1]],
            "logit_lens": [[{"id": i, "token": name(i), "probability": p} for i, p in row] for row in lens],
            "attention": summary,
            "png": str(png) if png else None,
        })
        return
    click.echo("tokens:")
    for pos, (i, t) in enumerate(zip(ids, tokens)):
        click.echo(f"  {pos:>4}  {i:>6}  {show(t)}")
    click.echo("next token:")
    for i, p in lens[-1]:
        click.echo(f"  {p:8.4f}  {show(name(i))}")
    click.echo("logit lens (residual stream at the last position, read through ln_f and wte):")
    for layer, row in enumerate(lens):
        where = "embedding" if layer == 0 else f"after block {layer - 1}"
        guesses = "  ".join(f"{show(name(i))} {p:.2f}" for i, p in row)
        click.echo(f"  {where:>16}: {guesses}")
    click.echo("attention (last position's strongest target; mean weight on previous / first token):")
    for row in summary:
        click.echo(f"  layer {row['layer']:>2} head {row['head']:>2}: -> {row['last_attends_to']:>3} "
                   f"{show(row['last_attends_to_token']):<14} {row['weight']:.2f}   "
                   f"prev {row['previous_token']:.2f}  first {row['first_token']:.2f}")
    if png:
        click.echo(f"attention heatmaps written to {png}")


@main.command()
@click.argument("text")
@model_option
@json_option
@friendly_errors
def tokenize(text, model_name, as_json):
    """Split TEXT into GPT-2 tokens and show their ids.

    \b
    Example:
      transformer tokenize "Hello, world! naïve café"
    """
    tokenizer = load_tokenizer(resolve_model_dir(model_name))
    ids = tokenizer.encode(text, allowed_special="all")
    if as_json:
        echo_json({"text": text, "ids": ids, "tokens": [token_text(tokenizer, i) for i in ids]})
        return
    click.echo(f"{len(ids)} tokens, {len(text.encode('utf-8'))} bytes")
    for i in ids:
        click.echo(f"{i:>6}  {show(token_text(tokenizer, i))}")


# The tokenizer's and the trainer's own commands (`transformer bpe learn ...`,
# `transformer train ...`) live in their own modules and join the group here.
from .bpe_cli import bpe as _bpe_group  # noqa: E402
from .train_cli import train as _train_command  # noqa: E402

main.add_command(_bpe_group)
main.add_command(_train_command)
