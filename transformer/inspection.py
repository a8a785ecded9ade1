"""Looking inside GPT-2 for teaching: next-token odds, the logit lens, attention maps.

- `top_next_tokens`: the k most likely next tokens with their probabilities.
- `logit_lens`: read the residual stream after every layer as if it were the last one
  (through the final layer norm and the unembedding) to watch the prediction form.
- `attention_maps`: how much each position attends to each earlier one, per layer and
  head; `attention_summary` says it in words and `save_attention_png` draws it.

(Named `inspection` rather than `inspect` so it never shadows Python's own module.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import GPT2
from .sample import probabilities


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k largest entries as (index, value), largest first."""
    k = min(k, probs.size)
    best = np.argpartition(-probs, k - 1)[:k]
    best = best[np.argsort(-probs[best], kind="stable")]
    return [(int(i), float(probs[i])) for i in best]


def top_next_tokens(model: GPT2, ids: list[int], k: int = 10, temperature: float = 1.0) -> list[tuple[int, float]]:
    """The k most likely next tokens after ids, as (token id, probability)."""
    logits, _ = model.forward(np.array(ids))
    return top_k(probabilities(logits, temperature), k)


def logit_lens(model: GPT2, ids: list[int], k: int = 5, position: int = -1) -> list[list[tuple[int, float]]]:
    """Top-k next-token guesses at `position` read from the residual stream after the
    embedding (entry 0) and after each block (entries 1..n_layer), as the forward pass
    kept it. The last entry is the model's real prediction."""
    lens = []
    for x in model.residual_stream(np.array(ids)):
        logits = model.unembed(model.final_norm(x[position]))
        lens.append(top_k(probabilities(logits), k))
    return lens


def attention_maps(model: GPT2, ids: list[int]) -> np.ndarray:
    """Attention weights, shape (n_layer, n_head, T, T): [l, h, i, j] is how much
    position i attends to position j in head h of layer l (each row sums to 1).
    They are the weights the forward pass itself used (kept on its tape)."""
    return model.attention_maps(np.array(ids))


def token_text(tokenizer, token_id: int) -> str:
    """The text a token stands for; bytes that are only part of a character (emoji are
    often split over tokens) are shown as escapes like \\xf0."""
    return tokenizer.token_bytes(token_id).decode("utf-8", errors="backslashreplace")


def describe_inspection(tokenizer, ids: list[int], lens: list[list[tuple[int, float]]], summary: list[dict]) -> dict:
    """The prompt's tokens, next tokens, logit lens and attention summary as plain data:
    the body of `transformer inspect --json`, shared with the classroom page's API so both
    answer the same question in the same shape."""

    def rows(pairs: list[tuple[int, float]]) -> list[dict]:
        return [{"id": i, "token": token_text(tokenizer, i), "probability": p} for i, p in pairs]

    return {
        "tokens": [{"id": i, "token": token_text(tokenizer, i)} for i in ids],
        "next": rows(lens[-1]),
        "logit_lens": [rows(row) for row in lens],
        "attention": summary,
    }


def attention_summary(maps: np.ndarray, tokens: list[str]) -> list[dict]:
    """For each layer and head: where the last position looks most, and how much
    attention (averaged over positions) goes to the previous token and to the first."""
    n_layer, n_head, t, _ = maps.shape
    rows = []
    for layer in range(n_layer):
        for head in range(n_head):
            w = maps[layer, head]
            target = int(np.argmax(w[-1]))
            rows.append({
                "layer": layer,
                "head": head,
                "last_attends_to": target,
                "last_attends_to_token": tokens[target],
                "weight": float(w[-1, target]),
                "previous_token": float(np.mean(np.diagonal(w, -1))) if t > 1 else 0.0,
                "first_token": float(w[:, 0].mean()),
            })
    return rows


#: `save_attention_png` draws at most this many (the last) positions: beyond that the
#: cells get too small to read and the image huge.
MAX_PNG_POSITIONS = 64


def save_attention_png(
    maps: np.ndarray,
    tokens: list[str],
    path: str | Path,
    layers: list[int] | None = None,
    max_positions: int = MAX_PNG_POSITIONS,
) -> Path:
    """Draw one heatmap per (layer, head): rows are query positions, columns the
    positions they attend to, with a colour bar for the weights and the tokens as labels.

    Only the last `max_positions` positions are drawn (the title says so), so that a long
    prompt still gives a readable image of bounded size. The file is written whole or not
    at all (Ctrl-C leaves nothing). Uses matplotlib's file-only Agg backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corpora.common import atomic_write

    layers = list(range(maps.shape[0])) if layers is None else layers
    total = maps.shape[2]
    t = min(total, max_positions)
    maps, tokens = maps[:, :, total - t:, total - t:], tokens[total - t:]
    n_head = maps.shape[1]
    cell = 0.11  # inches per position: room for a 6-point label
    size = 1.4 + cell * t
    fig, axes = plt.subplots(len(layers), n_head, figsize=(size * n_head + 1.0, size * len(layers)), squeeze=False)
    labels = [repr(tok)[1:-1] for tok in tokens]
    image = None
    for row, layer in enumerate(layers):
        for head in range(n_head):
            ax = axes[row][head]
            image = ax.imshow(maps[layer, head], vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
                ax.set_yticks(range(t), labels, fontsize=6)
            if row == len(layers) - 1:
                ax.set_xticks(range(t), labels, fontsize=6, rotation=90)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    shown = f"the last {t} of {total} positions" if t < total else f"{t} positions"
    fig.suptitle(f"attention weights, {shown} (row: query position, column: attended position)", fontsize=10)
    path = Path(path)
    try:
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, dpi=100, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
