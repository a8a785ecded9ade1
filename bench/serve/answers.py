"""What each route of the classroom page's API answers, as plain data.

Every answer is built by the same library functions the command line uses, so the API
and the CLI's ``--json`` say the same thing in the same shape:

  compare_answer   `bench compare --json`      (bench.compare.compare)
  trie_answer      `ngram show --json`         (NgramModel.subtree)
  inspect_answer   `transformer inspect --json` (transformer.inspection), plus attention weights
  step_answer      one word of `ngram generate` and of `transformer generate`, for both models
  report_answer    the latest `bench report` folder, if there is one

Nothing here knows about HTTP: the routes in `bench.serve.app` turn `UserError` into a
422 and `ModelUnavailable` into a 503.
"""
from __future__ import annotations

import json
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from corpora import UserError
from corpora.tokenizers import EOS
from corpora.tokenizers.bpe import tokenizer_label
from ngram import NgramModel
from ngram.phrases import continue_text
from transformer.inspection import (
    MAX_PNG_POSITIONS,
    attention_maps,
    attention_summary,
    describe_inspection,
    logit_lens,
    token_text,
)
from transformer.sample import Sampling, fit_to_window, generate_ids

from .. import compare as comparing
from ..models import TransformerChoice

#: The longest prompt accepted, in characters. The transformer reads only its window and
#: the n-gram only the last sentence, so a longer prompt would only cost time to tokenize.
MAX_PROMPT_CHARS = 20_000

#: Attention weights are sent for at most this many (the last) positions, as
#: `transformer inspect --png` draws them: a bigger grid is unreadable and heavy to send.
ATTENTION_POSITIONS = MAX_PNG_POSITIONS

#: A generation step adds one word: at most this many transformer tokens.
WORD_TOKENS = 8

#: Files of a report folder the page may fetch (the report lists its own files).
REPORT_FILES = (".png", ".md", ".json")


class ModelUnavailable(Exception):
    """The question needs a model that did not load; the message says which and why."""


@dataclass
class Models:
    """Both models, loaded once, and what the server knows about them.

    `problems` maps "ngram" or "transformer" to why that model is missing. One lock
    serialises the model work: the numpy forward pass and the n-gram's lazily built
    smoothing tables are not meant to be used by two threads at once, and on a small
    machine running two requests side by side would not be faster anyway.
    """

    ngram: NgramModel | None
    transformer: TransformerChoice | None
    problems: dict[str, str] = field(default_factory=dict)
    report_folder: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def need_ngram(self) -> NgramModel:
        if self.ngram is None:
            raise ModelUnavailable(f"the n-gram model is unavailable: {self.problems.get('ngram', 'not loaded')}")
        return self.ngram

    def need_transformer(self) -> TransformerChoice:
        if self.transformer is None:
            raise ModelUnavailable(f"the transformer is unavailable: {self.problems.get('transformer', 'not loaded')}")
        return self.transformer


# ------------------------------------------------------------------- status


def status_answer(models: Models) -> dict:
    """Which models are loaded (with their description) and why the others are not."""
    ngram, gpt = models.ngram, models.transformer
    return {
        "ngram": {
            "available": ngram is not None,
            "description": f"{ngram.order}-gram over {ngram.tokenizer.describe()}, {len(ngram.vocab):,} tokens" if ngram else None,
            "order": ngram.order if ngram else None,
            "problem": models.problems.get("ngram"),
        },
        "transformer": {
            "available": gpt is not None,
            "description": gpt.description if gpt else None,
            "layers": gpt.model.config.n_layer if gpt else None,
            "heads": gpt.model.config.n_head if gpt else None,
            "problem": models.problems.get("transformer"),
        },
        "limits": {"prompt_chars": MAX_PROMPT_CHARS, "attention_positions": ATTENTION_POSITIONS},
    }


# ------------------------------------------------------------------- compare


def compare_answer(models: Models, prompt: str, k: int = 10, budget: int = 1024, continuation: bool = True) -> dict:
    """`bench compare --json` for one prompt. With one model missing, its column is null
    and the other column is built by the same column function `compare` uses.
    `continuation=False` leaves out the greedy continuations (null), the slowest part."""
    if models.ngram is not None and models.transformer is not None:
        with models.lock:
            return comparing.compare(prompt, models.ngram, models.transformer, k, budget=budget,
                                     continuation=continuation).to_dict()
    if models.ngram is None and models.transformer is None:
        raise ModelUnavailable(f"no model is available: {'; '.join(models.problems.values()) or 'none loaded'}")
    if not prompt.strip():
        raise UserError('the prompt is empty; give some text, e.g. "It was the best of times"')
    with models.lock:
        left = comparing.ngram_next_words(models.ngram, prompt, k, continuation=continuation) if models.ngram else None
        right = (comparing.transformer_next_words(models.transformer, prompt, k, budget=budget, continuation=continuation)
                 if models.transformer else None)
    return {"prompt": prompt, "k": k, "ngram": asdict(left) if left else None,
            "transformer": asdict(right) if right else None}


# ---------------------------------------------------------------------- trie


def trie_answer(models: Models, context: str | list[str], depth: int = 2, top: int = 10,
                sentence_start: bool = False) -> dict:
    """`ngram show --json`: the trie under `context` (a string as typed, or a list of
    the model's tokens such as ``["<s>", "I", "want"]``)."""
    ngram = models.need_ngram()
    with models.lock:
        return ngram.subtree(context, depth=depth, top=top, sentence_start=sentence_start)


# ------------------------------------------------------------------- inspect


def inspect_answer(models: Models, prompt: str, k: int = 5, layer: int | None = None,
                   head: int | None = None) -> dict:
    """`transformer inspect --json`, plus the attention weights the page draws.

    The prompt is read as `transformer inspect` reads it (special tokens allowed, the
    last n_ctx tokens kept). `attention_weights` holds the weights among the last
    `ATTENTION_POSITIONS` positions for one layer and head, or for all of them when
    neither is given: ``weights[l][h][i][j]`` rounded to 4 decimals.
    """
    from transformer.cli import owner_name  # the label `transformer inspect` prints

    choice = models.need_transformer()
    config = choice.model.config
    check_layer_head(layer, head, config.n_layer, config.n_head)
    if not prompt:
        raise UserError("the prompt is empty; give some text")
    tokenizer = choice.tokenizer
    ids = tokenizer.encode(prompt, allowed_special="all")
    notes = []
    if len(ids) > config.n_ctx:
        notes.append(f"the prompt has {len(ids):,} tokens; the transformer reads only the last {config.n_ctx:,} (its window)")
        ids = ids[-config.n_ctx:]
    if not ids:
        raise UserError("the prompt has no tokens")
    with models.lock:
        lens = logit_lens(choice.model, ids, k)
        maps = attention_maps(choice.model, ids)
    body = describe_inspection(tokenizer, ids, lens, attention_summary(maps, [token_text(tokenizer, i) for i in ids]))
    return {
        "prompt": prompt,
        "model": choice.name,
        "tokenizer": tokenizer_label(tokenizer, owner_name(choice.name, choice.folder)),
        **body,
        "attention_weights": attention_weights(maps, layer, head),
        "notes": notes,
    }


def check_layer_head(layer: int | None, head: int | None, n_layer: int, n_head: int) -> None:
    """A layer and a head must both be given or both left out, and exist."""
    if (layer is None) != (head is None):
        raise UserError("give both layer and head, or neither (all of them)")
    if layer is not None and not 0 <= layer < n_layer:
        raise UserError(f"layer {layer}: the model has layers 0..{n_layer - 1}")
    if head is not None and not 0 <= head < n_head:
        raise UserError(f"head {head}: the model has heads 0..{n_head - 1}")


def attention_weights(maps: np.ndarray, layer: int | None, head: int | None) -> dict:
    """The attention among the last `ATTENTION_POSITIONS` positions, as nested lists."""
    total = maps.shape[2]
    first = max(0, total - ATTENTION_POSITIONS)
    cut = np.round(maps[:, :, first:, first:], 4)
    weights = cut[layer, head].tolist() if layer is not None else cut.tolist()
    return {"layer": layer, "head": head, "first_position": first, "positions": total - first, "weights": weights}


# ---------------------------------------------------------------------- step


def step_answer(models: Models, ngram_text: str | None, transformer_text: str | None,
                temperature: float = 1.0, top_k: int = 40, seed: int | None = None) -> dict:
    """One more word from each model, each continuing its own text (a model whose text
    is None is not stepped). Temperature 0 is greedy; the same seed gives the same word."""
    if temperature < 0 or top_k < 0:
        raise UserError(f"temperature and top_k must be at least 0, got {temperature} and {top_k}")
    for text in (ngram_text, transformer_text):
        if text is not None and not text.strip():
            raise UserError("the text to continue is empty; give some words")
    sampling = {"temperature": temperature, "top_k": top_k, "seed": seed}
    answer: dict = {"sampling": sampling, "ngram": None, "transformer": None}
    with models.lock:
        if ngram_text is not None:
            answer["ngram"] = ngram_step(models.need_ngram(), ngram_text, temperature, top_k, seed)
        if transformer_text is not None:
            answer["transformer"] = transformer_step(models.need_transformer(), transformer_text, temperature, top_k, seed)
    return answer


def ngram_step(model: NgramModel, text: str, temperature: float, top_k: int, seed: int | None) -> dict:
    """One word of `ngram generate`. A sentence end is not a word: when the model ends the
    sentence, the step also takes the first word of the next one (from ``<s>``)."""
    greedy = temperature == 0
    options = dict(temperature=temperature or 1.0, top_k=top_k or None, seed=seed, greedy=greedy)
    tokens = model.generate(text, 1, **options)
    if tokens == [EOS]:
        tokens = model.generate(text, 2, **options)
    added = model.render(tokens)
    return {"tokens": tokens, "added": added, "text": continue_text(model.tokenizer, text, added)}


def transformer_step(choice: TransformerChoice, text: str, temperature: float, top_k: int, seed: int | None) -> dict:
    """One word of `transformer generate`: tokens until the next one would start with
    white space (so " night" + "mare" is one step), at most `WORD_TOKENS`."""
    tokenizer = choice.tokenizer
    ids = tokenizer.encode(text, allowed_special="all")
    keep, _ = fit_to_window(len(ids), WORD_TOKENS, choice.model.config.n_ctx)
    stop = getattr(tokenizer, "eot_id", None)
    new: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a long text losing its oldest tokens is expected here
        for token in generate_ids(choice.model, ids[len(ids) - keep:], WORD_TOKENS, Sampling(temperature, top_k), seed, stop):
            if new and tokenizer.token_bytes(token)[:1].isspace():
                break
            new.append(token)
    added = tokenizer.decode(new)
    return {"tokens": [tokenizer.decode([t]) for t in new], "ids": new, "added": added, "text": text + added}


# -------------------------------------------------------------------- report


def report_answer(folder: Path | None) -> dict:
    """The latest `bench report` in `folder`: its Markdown, its numbers and its plots' names."""
    if folder is None or not (folder / "report.json").is_file():
        return {"available": False, "folder": str(folder) if folder else None,
                "hint": "run `bench report -o reports/latest` (or start bench serve with --report FOLDER)"}
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        markdown = (folder / "report.md").read_text(encoding="utf-8") if (folder / "report.md").is_file() else ""
    except (OSError, ValueError) as err:
        raise UserError(f"the report in {folder} cannot be read: {err}") from None
    plots = sorted(p.name for p in folder.glob("*.png"))
    return {"available": True, "folder": str(folder), "markdown": markdown, "report": data, "plots": plots}


def report_file(folder: Path | None, name: str) -> Path | None:
    """A file of the report folder by its bare name (no path: nothing outside the folder)."""
    if folder is None or "/" in name or "\\" in name or name.startswith(".") or not name.endswith(REPORT_FILES):
        return None
    path = folder / name
    return path if path.is_file() else None
