"""The ASGI app behind `vaekit serve`: a static page and a small JSON API, each endpoint a few lines over the library.

    GET  /api/runs                 the served runs: model, shape, classes, test codes on the pad
    POST /api/decode               {run, point: [u, v], sliders?: [...], label?}     -> {image}
    POST /api/encode               {run, pixels: [H*W numbers in 0..1], label?}      -> {reconstruction, point, spread, ...}
    POST /api/sample               {run, n?, seed?, temperature?, label?}            -> {images}
    POST /api/interpolate          {run, steps?, seed?, source?: samples|test, label?} -> {images}
    GET  /api/poems                the poem forms that can be written
    POST /api/poem                 {form, n?, seed?, temperature?, acrostic?, first_line?, keywords?, rhyme?,
                                    template?, simplified?}                          -> {poems}
    POST /api/poem/interpolate     {form, a, b, steps?, simplified?}                 -> {poems}

A bad input is answered 400 with {"error": "one sentence"}; nothing answers with a traceback.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaekit.serve.views import BadRequest, RunView, integer, number, png_data_url, text

__all__ = ["create_app"]

STATIC = Path(str(resources.files("vaekit.serve") / "static"))
MAX_IMAGES = 64


class Served:
    """The runs and poem models one server holds; poem models load on first use."""

    def __init__(self, runs: list[RunView], poem_runs: dict[str, Path]):
        self.runs = {r.id: r for r in runs}
        self.poem_runs = poem_runs
        self._poem_models: dict[str, torch.nn.Module] = {}

    def run(self, body: dict[str, Any]) -> RunView:
        run_id = body.get("run")
        if run_id not in self.runs:
            raise BadRequest(f"run must be one of {', '.join(self.runs) or '(none served)'}; got {run_id!r}")
        return self.runs[run_id]

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

    def poem_model(self, form: Any, themed: bool = False) -> torch.nn.Module:
        from vaekit.poetry import load_poem_model

        if form not in self.poem_forms():
            raise BadRequest(f"form must be one of {', '.join(self.poem_forms())}; got {form!r}")
        if themed and form not in self.themed_forms():
            raise BadRequest(f"no themed {form} model is served; write without a theme")
        key = f"{form}-themed" if themed else form
        if key not in self._poem_models:
            self._poem_models[key] = load_poem_model(form, None if themed else self.poem_runs.get(form), themed=themed)
        return self._poem_models[key]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _seeded(body: dict[str, Any]) -> torch.Generator:
    return torch.Generator().manual_seed(integer(body, "seed", 0, 2**31 - 1, default=0))


def create_app(runs: list[RunView], poem_runs: dict[str, Path] | None = None) -> Starlette:
    """The app serving `runs` (loaded RunViews) and the poem models (shipped, or runs by form)."""
    served = Served(runs, poem_runs or {})

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def list_runs(_request: Request) -> JSONResponse:
        return JSONResponse({"runs": [r.describe() for r in served.runs.values()]})

    async def decode(request: Request) -> JSONResponse:
        body = await _body(request)
        run = served.run(body)
        z = run.point(body)
        with torch.no_grad():
            image = run.decode(z, run.label(body))[0]
        return JSONResponse({"image": png_data_url(image, scale=4)})

    async def encode(request: Request) -> JSONResponse:
        body = await _body(request)
        run = served.run(body)
        if not run.has_encoder:
            raise BadRequest("a GAN has no encoder: it cannot map a drawing to a code")
        c, h, w = run.config["image_shape"]
        pixels = body.get("pixels")
        if not isinstance(pixels, list) or len(pixels) != h * w:
            raise BadRequest(f"pixels must be a list of {h * w} numbers ({h}x{w}, row by row)")
        if not all(isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 1 for p in pixels):
            raise BadRequest("pixels must be numbers between 0 and 1")
        x = torch.tensor(pixels, dtype=torch.float32).view(1, 1, h, w).expand(1, c, h, w)
        y = run.label(body)
        with torch.no_grad():
            q = run.model.posterior(x, y)
            reconstruction = run.decode(q.mean, y)[0]
        out: dict[str, Any] = {"reconstruction": png_data_url(reconstruction, scale=4),
                               "point": run.to_pad(q.mean), "spread": float(q.stddev.mean())}
        if run.config["dataset"] in ("mnist", "fashion-mnist") and c == 1:
            from vaekit.classifier import load_classifier

            with torch.no_grad():
                probs = torch.softmax(load_classifier(run.config["dataset"])(x), -1)[0]
            out["classifier"] = {"label": run.class_names[int(probs.argmax())], "probability": float(probs.max())}
        return JSONResponse(out)

    async def sample(request: Request) -> JSONResponse:
        body = await _body(request)
        run = served.run(body)
        n = integer(body, "n", 1, MAX_IMAGES, default=16)
        temperature = number(body, "temperature", 0, 3, default=1.0)
        y = run.label(body)
        z = torch.randn(n, run.model.latent_dim, generator=_seeded(body)) * temperature
        if y is not None and hasattr(run.model, "prior") and run.has_encoder:
            prior = run.model.prior(y)
            z = prior.mean.expand(n, -1) + z * prior.stddev.expand(n, -1)
        with torch.no_grad():
            images = run.decode(z, y)
        return JSONResponse({"images": [png_data_url(i, scale=2) for i in images]})

    async def interpolate(request: Request) -> JSONResponse:
        body = await _body(request)
        run = served.run(body)
        steps = integer(body, "steps", 2, 20, default=10)
        source = body.get("source", "samples")
        y = run.label(body)
        if source == "test":
            if not run.has_encoder:
                raise BadRequest("a GAN has no encoder: interpolate between samples instead")
            pick = torch.randint(len(run.test_images), (2,), generator=_seeded(body))
            with torch.no_grad():
                ends = run.model.posterior(run.test_images[pick], None if y is None else y.expand(2)).mean
        elif source == "samples":
            ends = torch.randn(2, run.model.latent_dim, generator=_seeded(body))
        else:
            raise BadRequest(f"source must be samples or test; got {source!r}")
        t = torch.linspace(0, 1, steps)[:, None]
        with torch.no_grad():
            images = run.decode((1 - t) * ends[0] + t * ends[1], y)
        return JSONResponse({"images": [png_data_url(i, scale=2) for i in images]})

    async def poem_forms(_request: Request) -> JSONResponse:
        from vaekit.poetry.themes import THEME_NAMES

        return JSONResponse({"forms": served.poem_forms(), "themed": served.themed_forms(), "themes": THEME_NAMES})

    def _finish(texts: list[str], body: dict[str, Any]) -> list[list[str]]:
        from vaekit.data.poetry import to_simplified
        from vaekit.poetry.verse import lines_of_text

        if body.get("simplified") not in (None, False, True):
            raise BadRequest("simplified must be true or false")
        if body.get("simplified"):
            texts = to_simplified(texts)
        return [lines_of_text(t) for t in texts]

    async def poem(request: Request) -> JSONResponse:
        from vaekit.poetry import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, VerseRules, write

        body = await _body(request)
        theme = text(body, "theme", 20)
        model = served.poem_model(body.get("form"), themed=theme is not None)
        keywords = text(body, "keywords") or ""
        rules = VerseRules(form=model.run_config.poem.form, template=text(body, "template") or "auto",
                           rhyme=text(body, "rhyme") or "auto", acrostic=text(body, "acrostic"),
                           first_line=text(body, "first_line"),
                           keywords=tuple(k.strip() for k in keywords.replace("，", ",").split(",") if k.strip()))
        texts = write(model, integer(body, "n", 1, 20, default=4), seed=integer(body, "seed", 0, 2**31 - 1, default=0),
                      temperature=number(body, "temperature", 0, 2, default=DEFAULT_TEMPERATURE), rules=rules,
                      top_p=DEFAULT_TOP_P,
                      theme=theme)
        return JSONResponse({"poems": _finish(texts, body)})

    async def poem_interpolate(request: Request) -> JSONResponse:
        from vaekit.poetry import VerseRules
        from vaekit.poetry import interpolate as interpolate_poems

        body = await _body(request)
        model = served.poem_model(body.get("form"))
        a, b = text(body, "a", 80), text(body, "b", 80)
        if a is None or b is None:
            raise BadRequest("a and b must both be poems")
        texts = interpolate_poems(model, a, b, steps=integer(body, "steps", 2, 12, default=6),
                                  rules=VerseRules(form=model.run_config.poem.form))  # as every poem the page writes
        return JSONResponse({"poems": _finish(texts, body)})

    async def bad_request(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, status_code=500)

    routes = [Route("/", index), Route("/api/runs", list_runs), Route("/api/decode", decode, methods=["POST"]),
              Route("/api/encode", encode, methods=["POST"]), Route("/api/sample", sample, methods=["POST"]),
              Route("/api/interpolate", interpolate, methods=["POST"]), Route("/api/poems", poem_forms),
              Route("/api/poem", poem, methods=["POST"]),
              Route("/api/poem/interpolate", poem_interpolate, methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, exception_handlers={ValueError: bad_request, Exception: internal})
