"""The classroom page's web app: a FastAPI app over already-loaded models.

`create_app(ngram_model, transformer_model)` builds it, so tests can hand it tiny models
and `bench serve` the default ones. Routes:

  GET  /                      the page (bench/serve/static/index.html), /static/* its script and style
  GET  /api/status            which models are loaded, and why the others are not
  GET  /api/compare?prompt=…&k=…&budget=…&continuation=…   = bench compare --json
  GET  /api/trie?context=…&depth=…&top=…&sentence_start=…   (or token=…&token=…) = ngram show --json
  GET  /api/inspect?prompt=…&k=…[&layer=…&head=…]   = transformer inspect --json, plus attention weights
  POST /api/step  {"ngram": text, "transformer": text, "temperature", "top_k", "seed"}: one word each
  GET  /api/report            the latest bench report (Markdown, numbers, plot names)
  GET  /api/report/files/NAME a plot of that report

Every error is JSON ``{"error": "one line", "status": N}``: unknown routes 404, bad
parameters 422, oversized prompts or requests 413, a model that did not load 503.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from corpora import UserError

from . import answers
from .answers import MAX_PROMPT_CHARS, ModelUnavailable, Models

STATIC = Path(__file__).resolve().parent / "static"

#: A request bigger than this (query string or body, in bytes) is refused with a 413
#: before anything reads it: four bytes per character of the longest prompt, and room.
MAX_REQUEST_BYTES = 4 * MAX_PROMPT_CHARS + 4096

#: The page loads only its own files: no inline script, no other site. Even if some text
#: were ever inserted as markup by mistake, an injected <img onerror=…> could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class StepRequest(BaseModel):
    """One generation step: each model continues its own text (null: leave it out)."""

    ngram: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    transformer: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    temperature: float = Field(1.0, ge=0, le=5)
    top_k: int = Field(40, ge=0, le=100_000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


def create_app(ngram_model, transformer_model, problems: dict[str, str] | None = None,
               report_folder: Path | None = None) -> FastAPI:
    """The app over these models (either may be None; `problems` says why)."""
    models = Models(ngram_model, transformer_model, dict(problems or {}), report_folder)
    app = FastAPI(
        title="trie-vs-transformer classroom", docs_url=None, redoc_url=None,  # their pages load scripts from a CDN
        openapi_url="/api/openapi.json",
    )
    app.state.models = models
    add_error_handlers(app)
    add_limits_and_headers(app)
    add_page_routes(app)
    add_api_routes(app, models)
    return app


# -------------------------------------------------------------------- errors


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    """Every failure the user can cause answers one line of JSON with a 4xx status."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = "no such page or API route" if exc.status_code == 404 else str(exc.detail)
        return error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "; ".join(describe_problem(p) for p in exc.errors()) or "bad request")

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(ModelUnavailable)
    async def unavailable(request: Request, exc: ModelUnavailable) -> JSONResponse:
        return error(503, str(exc))


def describe_problem(problem: dict) -> str:
    """One validation problem as "k: Input should be less than or equal to 50"."""
    where = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "request"
    return f"{where}: {problem.get('msg', 'invalid')}"


def check_prompt(prompt: str, name: str = "prompt") -> str:
    """Refuse a prompt longer than `MAX_PROMPT_CHARS` with a 413."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise HTTPException(413, f"the {name} has {len(prompt):,} characters; at most {MAX_PROMPT_CHARS:,} are accepted")
    return prompt


def add_limits_and_headers(app: FastAPI) -> None:
    """Refuse oversized requests before they are read; send the security headers."""

    @app.middleware("http")
    async def limits(request: Request, call_next):
        declared = request.headers.get("content-length", "0")
        if len(request.url.query) > MAX_REQUEST_BYTES or (declared.isdigit() and int(declared) > MAX_REQUEST_BYTES):
            response = error(413, f"the request is too large (at most {MAX_REQUEST_BYTES:,} bytes)")
        elif request.method == "POST" and "content-length" not in request.headers:
            response = error(411, "a request body needs a Content-Length")
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


# --------------------------------------------------------------------- routes


def add_page_routes(app: FastAPI) -> None:
    """The page and its files, shipped inside the package (no CDN: it works offline)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    @app.get("/report", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")


def add_api_routes(app: FastAPI, models: Models) -> None:
    """The JSON API; each route is one call into `bench.serve.answers`."""

    @app.get("/api/status")
    def status() -> dict:
        return answers.status_answer(models)

    @app.get("/api/compare")
    def compare(prompt: str = Query(..., min_length=1), k: int = Query(10, ge=1, le=50),
                budget: int = Query(1024, ge=0, le=8192), continuation: bool = True) -> dict:
        return answers.compare_answer(models, check_prompt(prompt), k, budget, continuation)

    @app.get("/api/trie")
    def trie(context: str = "", token: list[str] = Query(default=[]), depth: int = Query(2, ge=0, le=10),
             top: int = Query(10, ge=1, le=100), sentence_start: bool = False) -> dict:
        if context and token:
            raise UserError("give context (text) or token (the model's tokens, repeated), not both")
        return answers.trie_answer(models, token or check_prompt(context, "context"), depth, top, sentence_start)

    @app.get("/api/inspect")
    def inspect(prompt: str = Query(..., min_length=1), k: int = Query(5, ge=1, le=50),
                layer: int | None = None, head: int | None = None) -> dict:
        return answers.inspect_answer(models, check_prompt(prompt), k, layer, head)

    @app.post("/api/step")
    def step(request: StepRequest) -> dict:
        if request.ngram is None and request.transformer is None:
            raise UserError('give the text to continue: {"ngram": "...", "transformer": "..."}')
        return answers.step_answer(models, request.ngram, request.transformer, request.temperature,
                                   request.top_k, request.seed)

    @app.get("/api/report")
    def report() -> dict:
        return answers.report_answer(models.report_folder)

    @app.get("/api/report/files/{name}")
    def report_file(name: str) -> FileResponse:
        path = answers.report_file(models.report_folder, name)
        if path is None:
            raise HTTPException(404, "no such report file")
        return FileResponse(path)
