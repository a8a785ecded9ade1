"""`bench serve`: the classroom page, both models side by side in a browser.

    >>> from bench import models
    >>> from bench.serve import create_app
    >>> app = create_app(models.ngram_model(), models.transformer_model())   # then: uvicorn.run(app)

  answers  what each API route answers, by the same library functions as the CLI
  app      the FastAPI app: routes, JSON errors, request limits, the page's files
  running  loading both models (a failure leaves the other one serving) and the server
  static/  the page: index.html, app.js, style.css (no framework, no CDN)
"""
from .app import create_app

__all__ = ["create_app"]
