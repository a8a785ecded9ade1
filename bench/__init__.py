"""The comparison harness: both models on the same prompts and the same text.

    >>> from bench import compare, models
    >>> ngram, gpt = models.ngram_model(), models.transformer_model()   # default models
    >>> print(compare.render_text(compare.compare("It was the best of times", ngram, gpt)))

The pieces:
  models      which two models (default n-gram, built on first use; GPT-2 or the bundled model)
  words       next-WORD probabilities from a BPE model (expanding token continuations)
  compare     side-by-side next-word predictions, reasons, continuations, timings
  perplexity  both models on the same text (open-vocabulary n-gram, context-window ablation);
              a row is its labels and a `corpora.units.Score`, where every unit is counted
  mixing      aligned BPE tokens and the interpolation λ·p_transformer + (1−λ)·p_ngram
  speed       build, load, latency and generation speed, side by side
  wordspans   which whitespace word each model's token belongs to (per-word losses)
  context     per-word perplexity against the words of context each model may see
  breakdown   words bucketed by the context the trie has seen; who wins in each bucket
  induction   random sequences shown twice: copying, and the heads that do it
  accuracy    next-word accuracy, top-1 and top-5, of both models
  cloze       the last word of a passage (LAMBADA, the harness's lambada_openai definitions)
  wikitext    WikiText scored as lm-evaluation-harness does (articles, detokenizer, disjoint windows)
  learning    the learning curve: held-out per-word perplexity against training tokens seen
  report      all of it in one folder: report.md, report.json and plots
  serve       the classroom page: both models in a browser, and its JSON API (FastAPI)
  tables      aligned text and Markdown tables, for every table above
  cli         the `bench` command: arguments checked before any model loads
"""
