"""The HTTP JSON service (``genrec serve``): a FastAPI app over one loaded ``GenRecPipeline``.

Routes: ``POST /recommend``, ``POST /recommend/batch``, ``GET /items/{id}``, ``GET /items?query=``,
``POST /items`` (only with ``allow_catalogue_edits``), ``GET /health``, ``GET /metrics``. Every error is
a JSON body ``{"error": message, "field": where}`` with a 4xx status (5xx only for a bug); no request can
take the service down.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from .. import __version__
from ..errors import GenRecError
from .batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, MicroBatcher, load_on_model_thread
from .limits import BodyLimit, RequestTiming
from .metrics import ServiceMetrics
from .schemas import MAX_BODY_BYTES, MAX_QUERY_RESULTS, BatchRequest, NewItemsRequest, RecommendRequest
from .search import ItemSearch


class RequestError(Exception):
    """A request the service refuses: HTTP ``status`` with ``message`` about ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def serve_model(path_or_repo, load_options: dict | None = None, **app_options) -> FastAPI:
    """``create_app`` for a model folder or Hub repo (``load_options``: ``from_pretrained``'s), loaded on the
    thread that will rank (``serving.batcher``: run on another thread, the same model ranked ~1.7x slower)."""
    pipeline, thread = load_on_model_thread(path_or_repo, **(load_options or {}))
    return create_app(pipeline, model_thread=thread, **app_options)


def create_app(
    pipeline,
    allow_catalogue_edits: bool = False,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_body_bytes: int = MAX_BODY_BYTES,
    model_thread: ThreadPoolExecutor | None = None,
) -> FastAPI:
    """The service for ``pipeline`` (loaded once; shared by every request; ranked on ``model_thread``)."""
    metrics = ServiceMetrics()
    batcher = MicroBatcher(pipeline, max_batch, max_wait_ms, on_batch=metrics.observe_batch, model_thread=model_thread)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # uvicorn has let in-flight requests finish (SIGTERM drains them)

    app = FastAPI(title="genrec", version=__version__, lifespan=lifespan)
    app.state.pipeline, app.state.batcher, app.state.metrics = pipeline, batcher, metrics
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestTiming, observe=metrics.observe_request)  # outermost: refusals count too

    # Routes return JSONResponse: a returned dict would be validated and re-encoded by FastAPI first, a
    # measurable cost per request next to a 40-millisecond ranking on 2 cores.
    @app.post("/recommend")
    async def recommend(body: RecommendRequest) -> JSONResponse:
        return JSONResponse(await _recommend(pipeline, batcher, body, ""))

    @app.post("/recommend/batch")
    async def recommend_batch(body: BatchRequest) -> JSONResponse:
        answers = [_recommend(pipeline, batcher, r, f"requests[{n}].") for n, r in enumerate(body.requests)]
        return JSONResponse({"results": await asyncio.gather(*answers)})

    _add_item_routes(app, pipeline, batcher, allow_catalogue_edits)

    @app.get("/health")
    async def health() -> dict:
        return _health(pipeline)

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def _add_item_routes(app: FastAPI, pipeline, batcher: MicroBatcher, allow_catalogue_edits: bool) -> None:
    """``GET /items/{id}``, ``GET /items?query=`` and ``POST /items``."""
    search = ItemSearch(pipeline.tokenizer.catalog, pipeline.item_prior.get("counts"))

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        return _describe(pipeline, item_id, "item_id")

    @app.get("/items")
    async def items(query: str = "", limit: int = 20) -> dict:
        if not 1 <= limit <= MAX_QUERY_RESULTS:
            raise RequestError(422, f"limit must be between 1 and {MAX_QUERY_RESULTS}, got {limit}", "limit")
        catalog = pipeline.tokenizer.catalog
        return {"items": [catalog.describe(catalog.item_ids[r]) for r in search.search(query, limit)]}

    @app.post("/items")
    async def add_items(body: NewItemsRequest) -> dict:
        if not allow_catalogue_edits:
            raise RequestError(403, "catalogue edits are off; start the service with --allow-catalogue-edits")
        await batcher.edit(_add_items, pipeline, body)
        return {"added": len(body.items), "catalogue_size": len(pipeline.tokenizer.catalog)}


async def _recommend(pipeline, batcher: MicroBatcher, body: RecommendRequest, where: str) -> dict:
    catalog = pipeline.tokenizer.catalog
    known = [item in catalog for item in body.history]
    unknown = [(n, item) for n, (item, ok) in enumerate(zip(body.history, known)) if not ok]
    if unknown and body.strict:
        n, item = unknown[0]
        raise RequestError(422, f"unknown item id {item!r} (the catalogue has {len(catalog)} items)", f"history[{n}]")
    overrides = {"k": body.k, "exclude_history": body.exclude_history}
    if body.modality is not None:
        overrides["modality"] = body.modality
    try:
        config = pipeline.ranking_config.with_overrides(**overrides)
    except GenRecError as e:
        raise RequestError(422, str(e), where + ("k" if "k=" in str(e) else "modality")) from None
    history = [item for item, ok in zip(body.history, known) if ok]
    try:
        rec = await batcher.recommend(history, config)
    except GenRecError as e:
        raise RequestError(422, str(e), where + "history") from None
    return {"items": rec.records(catalog), "unknown": [item for _, item in unknown]}


def _describe(pipeline, item_id: Any, field: str) -> dict:
    catalog = pipeline.tokenizer.catalog
    if item_id not in catalog:
        raise RequestError(404, f"unknown item id {item_id!r} (the catalogue has {len(catalog)} items)", field)
    return catalog.describe(item_id)


def _add_items(pipeline, body: NewItemsRequest) -> None:
    """``genrec add-items`` for a request body: the same checks, on the model thread."""
    catalog = pipeline.tokenizer.catalog
    items = body.items
    embeddings = any(it.text_emb is not None or it.image_emb is not None for it in items)
    ids = any(it.sid_text is not None or it.sid_image is not None for it in items)
    if embeddings == ids:
        raise RequestError(
            422, "give the new items' embeddings (text_emb/image_emb) or semantic IDs (sid_text/sid_image)", "items"
        )
    arrays = {}
    for m in catalog.modalities:
        key = f"{m}_emb" if embeddings else f"sid_{m}"
        given = [getattr(it, key) for it in items]
        width = {len(v) for v in given if v is not None}
        if len(width) > 1:
            raise RequestError(422, f"{key} of different lengths {sorted(width)}", f"items[].{key}")
        size = width.pop() if width else (0 if embeddings else catalog.levels(m))
        missing = np.nan if embeddings else -1
        arrays[m] = np.array([v if v is not None else [missing] * size for v in given], dtype=np.float64)
    display = [it.model_dump(include={"title", "brand", "categories"}, exclude_none=True) for it in items]
    try:
        if embeddings:
            pipeline.add_items([it.item_id for it in items], embeddings=arrays, display=display)
        else:
            sids = {m: a.astype(np.int64) for m, a in arrays.items()}
            pipeline.add_items([it.item_id for it in items], semantic_ids=sids, display=display)
    except GenRecError as e:
        raise RequestError(422, str(e), "items") from None


def _health(pipeline) -> dict:
    folder = pipeline.folder
    # a Hub download lives in .../snapshots/<commit>/: the commit the model (and its card's facts) came from
    commit = folder.name if folder is not None and folder.parent.name == "snapshots" else None
    return {
        "status": "ok",
        "model": pipeline.name_or_path,
        "commit": commit,
        "catalogue_size": len(pipeline.tokenizer.catalog),
        "trained_items": pipeline.trained_rows,
        "catalogue_fingerprint": pipeline.tokenizer.catalog.fingerprint(pipeline.trained_rows),
        "modalities": pipeline.tokenizer.modalities,
        "ranking_config": pipeline.ranking_config.to_dict(),
        "genrec_version": __version__,
    }


def _error(status: int, message: str, field: str | None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError):
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            return _error(400, f"malformed JSON body ({first.get('msg', 'invalid')})", "body")
        # drop "body" and the union branch pydantic tried ("history", 0, "int" -> history[0])
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "int", "str", "float")]
        field = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".") or "body"
        return _error(422, f"{field}: {first.get('msg', 'invalid value')}", field)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        return _error(500, f"internal error ({type(exc).__name__}: {exc})", None)
