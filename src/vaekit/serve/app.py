"""The ASGI app behind `vaekit serve`: a static page and a small JSON API, each endpoint a few lines over the library.

    GET  /api/runs                 the served runs: model, shape, classes, test codes on the pad
    POST /api/decode               {run, point: [u, v], sliders?: [...], label?, lower_temperature?} -> {image}
    POST /api/encode               {run, pixels: [H*W numbers in 0..1], label?}      -> {reconstruction, point, spread, ...}
    POST /api/sample               {run, n?, seed?, temperature?, label?, lower_temperature?} -> {images}
    POST /api/interpolate          {run, steps?, seed?, source?: samples|test, label?, lower_temperature?}
                                                                                     -> {images}
    GET  /api/poems                the poem forms that can be written, the themes, the sampling defaults
    POST /api/poem                 {form, n?, seed?, temperature?, acrostic?, first_line?, keywords?, rhyme?,
                                    template?, simplified?}                          -> {poems}
    POST /api/poem/interpolate     {form, a, b, steps?, simplified?}                 -> {poems}

For a hierarchical run the pad, samples and paths move through the top group; `lower_temperature` draws the groups
below it at that temperature (0, the default: their prior mean).

A bad input is answered 400 with {"error": "one sentence"}; nothing answers with a traceback. The API is for the
page on this machine: a request addressed to another host name (DNS rebinding), from another page's origin, or
whose body is not JSON is answered 403; a body far larger than any valid one 413; and model work runs on one
worker thread off the event loop, with a bounded queue (503 when it is full), so the page stays responsive.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaekit.seeds import MAX_SEED
from vaekit.serve.views import BadRequest, Refused, RunView, flag, integer, number, png_data_url, text

__all__ = ["create_app"]

STATIC = Path(str(resources.files("vaekit.serve") / "static"))
MAX_IMAGES = 64
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
QUEUE = 8  # model requests waiting behind the one being computed; more are answered 503
BODY_FLOOR = 64 * 1024  # bytes: a poem request, or a 28x28 drawing, is a few kilobytes
BYTES_A_PIXEL = 32  # a drawing's pixel as JSON: "0.30196078431372547, " at most


class Served:
    """The runs and poem models one server holds; poem models load on first use."""

    def __init__(self, runs: list[RunView], poem_runs: dict[str, Path]):
        self.runs = {r.id: r for r in runs}
        self.poem_runs = poem_runs
        self._poem_models: dict[str, torch.nn.Module] = {}

    def run(self, body: dict[str, Any]) -> RunView:
        run_id = body.get("run")
        if not isinstance(run_id, str) or run_id not in self.runs:
            shown = run_id if isinstance(run_id, str | None) else type(run_id).__name__
            raise BadRequest(f"run must be one of {', '.join(self.runs) or '(none served)'}; got {str(shown)[:40]!r}")
        return self.runs[run_id]

    def body_limit(self) -> int:
        """The largest request body taken: the floor, or a drawing of the largest served image."""
        pixels = max((r.config["image_shape"][1] * r.config["image_shape"][2] for r in self.runs.values()), default=0)
        return max(BODY_FLOOR, BYTES_A_PIXEL * pixels + 4096)

    def poem_forms(self) -> list[str]:
        from vaekit.data.poetry import FORMS
        from vaekit.poetry import shipped_model_dir

        shipped = [f for f in FORMS if (shipped_model_dir(f) / "model.safetensors").is_file()]
        return sorted(set(shipped) | set(self.poem_runs), key=FORMS.index)

    def themed_forms(self) -> list[str]:
        """Forms with a themed model shipped (a poem run given on the command line replaces the shipped one)."""
        from vaekit.poetry import shipped_model_dir

        return [f for f in self.poem_forms()
                if f not in self.poem_runs and (shipped_model_dir(f, themed=True) / "model.safetensors").is_file()]

    def poem_model(self, form: Any, themed: bool = False, recall: bool = False) -> torch.nn.Module:
        """The model for `form`: a poem run given on the command line, else the shipped one (its themed CVAE with
        `themed`; with `recall` the one that tells poems back, where the form has one)."""
        import vaekit
        from vaekit.poetry import shipped_name

        if not isinstance(form, str) or form not in self.poem_forms():
            shown = form if isinstance(form, str | None) else type(form).__name__
            raise BadRequest(f"form must be one of {', '.join(self.poem_forms())}; got {str(shown)[:40]!r}")
        if themed and form not in self.themed_forms():
            raise BadRequest(f"no themed {form} model is served; write without a theme")
        if not themed and form in self.poem_runs:
            key, source = form, self.poem_runs[form]
        else:
            key = source = shipped_name(form, themed, recall)
        if key not in self._poem_models:
            self._poem_models[key] = vaekit.load(source)
        return self._poem_models[key]


class Worker:
    """Model work on one thread off the event loop, so that the page's own requests are answered meanwhile; at
    most QUEUE requests wait behind the running one, and the rest are refused with 503."""

    def __init__(self, queue: int = QUEUE):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaekit-model")
        self.limit, self.pending = queue + 1, 0  # counted on the event loop's thread only

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pending >= self.limit:
            raise Refused(503, f"the server is busy with {self.pending} requests; try again in a moment")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))
        finally:
            self.pending -= 1


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read up to `limit` bytes (413 past it, whatever Content-Length claims)."""
    too_large = Refused(413, f"the request body is larger than any valid one ({limit:,} bytes); send less")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, an integer of thousands of digits, deep nesting
        raise BadRequest("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _seed(body: dict[str, Any]) -> int:
    return integer(body, "seed", 0, MAX_SEED, default=0)


def _seeded(body: dict[str, Any]) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(body))


def _host_name(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:8000" -> "::1")."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: only requests addressed to this machine's names (no DNS rebinding), from the page's own
    origin, and with JSON bodies, reach the app; the rest are answered 403 with one sentence. A form post or a
    `text/plain` fetch from any other site would otherwise drive the models on the user's machine."""

    def __init__(self, app: Any, host: str, port: int | None):
        self.app, self.port = app, port
        self.names = None if host in WILDCARDS else {*LOOPBACK, host.strip("[]").lower()}

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> str | None:
        host = headers.get("host", "")
        where = f"http://127.0.0.1:{self.port}/" if self.port else "http://127.0.0.1/"
        if self.names is not None and _host_name(host).lower() not in self.names:
            return f"this server answers requests addressed to {', '.join(sorted(self.names))} only; open {where}"
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
                return f"requests from another site's page ({origin[:60]}) are refused; use the page at {where}"
        if method == "POST" and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return "the request body must be JSON, sent with Content-Type: application/json"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            reason = self.refusal(scope["method"], scope["path"], headers)
            if reason is not None:
                await JSONResponse({"error": reason}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(runs: list[RunView], poem_runs: dict[str, Path] | None = None, host: str = "127.0.0.1",
               port: int | None = None) -> Any:
    """The app serving `runs` (loaded RunViews) and the poem models (shipped, or runs by form), guarded for the
    page on `host` (and `port`) alone."""
    served = Served(runs, poem_runs or {})
    worker = Worker()
    limit = served.body_limit()

    def endpoint(compute: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Any]:
        """A POST endpoint: the body read on the event loop, the model work on the worker thread."""
        async def handle(request: Request) -> JSONResponse:
            body = await _body(request, limit)
            return JSONResponse(await worker.run(compute, body))
        return handle

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def favicon(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def list_runs(_request: Request) -> JSONResponse:
        return JSONResponse({"runs": [r.describe() for r in served.runs.values()]})

    @torch.no_grad()
    def decode(body: dict[str, Any]) -> dict[str, Any]:
        run = served.run(body)
        z = run.point(body)
        return {"image": png_data_url(run.decode(z, run.label(body), run.lower_temperature(body))[0], scale=4)}

    @torch.no_grad()
    def encode(body: dict[str, Any]) -> dict[str, Any]:
        run = served.run(body)
        if not run.has_encoder:
            raise BadRequest("a GAN has no encoder: it cannot map a drawing to a code")
        c, h, w = run.config["image_shape"]
        pixels = body.get("pixels")
        if not isinstance(pixels, list) or len(pixels) != h * w:
            raise BadRequest(f"pixels must be a list of {h * w} numbers ({h}x{w}, row by row)")
        if not all(isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 1 for p in pixels):
            raise BadRequest("pixels must be numbers between 0 and 1")
        x = torch.tensor([float(p) for p in pixels], dtype=torch.float32).view(1, 1, h, w).expand(1, c, h, w)
        y = run.label(body)
        q = run.model.posterior(x, y)
        reconstruction = run.decode(q.mean, y)[0]
        out: dict[str, Any] = {"reconstruction": png_data_url(reconstruction, scale=4),
                               "point": run.to_pad(q.mean), "spread": float(q.stddev.mean())}
        if run.config["dataset"] in ("mnist", "fashion-mnist") and c == 1:
            from vaekit.classifier import load_classifier

            probs = torch.softmax(load_classifier(run.config["dataset"])(x), -1)[0]
            out["classifier"] = {"label": run.class_names[int(probs.argmax())], "probability": float(probs.max())}
        return out

    @torch.no_grad()
    def sample(body: dict[str, Any]) -> dict[str, Any]:
        run = served.run(body)
        n = integer(body, "n", 1, MAX_IMAGES, default=16)
        temperature = number(body, "temperature", 0, 3, default=1.0)
        y = run.label(body)
        z = torch.randn(n, run.model.latent_dim, generator=_seeded(body)) * temperature
        if run.has_encoder:  # drawn around the model's own prior (a class's, a learned one, a hierarchy's top group)
            prior = run.model.prior(y)
            z = prior.mean.expand(n, -1) + z * prior.stddev.expand(n, -1)
        images = run.decode(z, y, run.lower_temperature(body), _seed(body))
        return {"images": [png_data_url(i, scale=2) for i in images]}

    @torch.no_grad()
    def interpolate(body: dict[str, Any]) -> dict[str, Any]:
        run = served.run(body)
        steps = integer(body, "steps", 2, 20, default=10)
        source = body.get("source", "samples")
        y = run.label(body)
        if source == "test":
            if not run.has_encoder:
                raise BadRequest("a GAN has no encoder: interpolate between samples instead")
            pick = torch.randint(len(run.test_images), (2,), generator=_seeded(body))
            ends = run.model.posterior(run.test_images[pick], None if y is None else y.expand(2)).mean
        elif source == "samples":
            ends = torch.randn(2, run.model.latent_dim, generator=_seeded(body))
        else:
            raise BadRequest(f"source must be samples or test; got {str(source)[:40]!r}")
        t = torch.linspace(0, 1, steps)[:, None]
        images = run.decode((1 - t) * ends[0] + t * ends[1], y, run.lower_temperature(body), _seed(body))
        return {"images": [png_data_url(i, scale=2) for i in images]}

    async def poem_forms(_request: Request) -> JSONResponse:
        from dataclasses import asdict

        from vaekit.poetry import SAMPLING
        from vaekit.poetry.themes import THEME_NAMES

        tunes = []
        if "ci" in served.poem_forms():
            from vaekit.poetry.tunes import tunes as shipped_tunes

            tunes = [t.name for t in shipped_tunes()]
        return JSONResponse({"forms": served.poem_forms(), "themed": served.themed_forms(), "themes": THEME_NAMES,
                             "tunes": tunes, "sampling": asdict(SAMPLING)})

    def _finish(texts: list[str], body: dict[str, Any]) -> dict[str, Any]:
        from vaekit.data.poetry import to_simplified
        from vaekit.poetry.verse import lines_of_text

        simplified = flag(body, "simplified")
        if simplified:
            texts = to_simplified(texts)
        return {"poems": [lines_of_text(t) for t in texts]}

    def ci(body: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
        """A ci to the tune asked: traditional characters unless simplified is asked, as the verse forms show."""
        from vaekit.data.poetry import to_traditional
        from vaekit.poetry import SAMPLING
        from vaekit.poetry.ci import write_ci
        from vaekit.poetry.tunes import find_tune, tunes

        given = [k for k in ("acrostic", "first_line", "keywords", "rhyme", "template", "theme") if text(body, k, 80)]
        if given:
            raise BadRequest(f"{', '.join(given)}: for the verse forms only; a ci's tune fixes its lines, tones and "
                             "rhymes")
        simplified = flag(body, "simplified")
        name = text(body, "tune", 20)
        tune = find_tune(name) if name else tunes()[0]
        texts = write_ci(model, tune, integer(body, "n", 1, 20, default=4),
                         seed=integer(body, "seed", 0, MAX_SEED, default=0),
                         temperature=number(body, "temperature", 0, 2, default=SAMPLING.temperature))
        poems = [[line + stop for line, stop in zip(tune.split(t), tune.stops, strict=True)] for t in texts]
        if not simplified:
            poems = [to_traditional(lines) for lines in poems]
        return {"poems": poems, "punctuated": True, "tune": tune.name}

    def poem(body: dict[str, Any]) -> dict[str, Any]:
        from vaekit.poetry import SAMPLING, write
        from vaekit.poetry.decode import rules_from_options

        if body.get("form") == "ci":
            return ci(body, served.poem_model("ci"))
        theme = text(body, "theme", 20)
        model = served.poem_model(body.get("form"), themed=theme is not None)
        rules = rules_from_options(model.run_config.poem.form, template=text(body, "template"),
                                   rhyme=text(body, "rhyme"), acrostic=text(body, "acrostic"),
                                   first_line=text(body, "first_line"), keywords=text(body, "keywords"))
        texts = write(model, integer(body, "n", 1, 20, default=4), seed=integer(body, "seed", 0, MAX_SEED, default=0),
                      temperature=number(body, "temperature", 0, 2, default=SAMPLING.temperature), rules=rules,
                      theme=theme)
        return _finish(texts, body)

    def poem_interpolate(body: dict[str, Any]) -> dict[str, Any]:
        from vaekit.poetry import VerseRules, kept_in_place
        from vaekit.poetry import interpolate as interpolate_poems

        if body.get("form") == "ci":
            raise BadRequest("interpolation walks between two poems of a verse form; ci are written by tune only")
        model = served.poem_model(body.get("form"), recall=True)
        a, b = text(body, "a", 80), text(body, "b", 80)
        if a is None or b is None:
            raise BadRequest("a and b must both be poems")
        texts = interpolate_poems(model, a, b, steps=integer(body, "steps", 2, 12, default=6),
                                  rules=VerseRules(form=model.run_config.poem.form))  # as every poem the page writes
        kept = [kept_in_place(a, texts[0]), kept_in_place(b, texts[-1])]  # the ends: each poem told back
        return {**_finish(texts, body), "kept": kept}

    async def bad_request(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, status_code=500)

    routes = [Route("/", index), Route("/favicon.ico", favicon), Route("/api/runs", list_runs),
              Route("/api/decode", endpoint(decode), methods=["POST"]),
              Route("/api/encode", endpoint(encode), methods=["POST"]),
              Route("/api/sample", endpoint(sample), methods=["POST"]),
              Route("/api/interpolate", endpoint(interpolate), methods=["POST"]), Route("/api/poems", poem_forms),
              Route("/api/poem", endpoint(poem), methods=["POST"]),
              Route("/api/poem/interpolate", endpoint(poem_interpolate), methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, exception_handlers={Refused: refused, ValueError: bad_request,
                                                       Exception: internal})
    app.state.worker = worker  # how many model requests wait (tests watch the queue fill)
    return Guard(app, host, port)
