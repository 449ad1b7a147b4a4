"""genrec serve: the HTTP JSON recommendation service over one model (``genrec.serving.app``)."""

from __future__ import annotations

from .arguments import add_served_model_arguments, missing_serve_extra, model_placement, non_negative, positive


def add_arguments(p):
    from ..serving.batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS

    add_served_model_arguments(p, default_port=8000)
    p.add_argument(
        "--max-batch",
        type=positive(int),
        default=DEFAULT_MAX_BATCH,
        help=f"histories ranked together at most (default: {DEFAULT_MAX_BATCH})",
    )
    p.add_argument(
        "--max-wait-ms",
        type=non_negative(float),
        default=DEFAULT_MAX_WAIT_MS,
        help=f"how long a request waits for others to share its batch (default: {DEFAULT_MAX_WAIT_MS:g})",
    )
    p.add_argument(
        "--allow-catalogue-edits",
        action="store_true",
        help="enable POST /items (add items to the live catalogue, as genrec add-items does; off by default)",
    )


def run(args):
    try:
        import uvicorn

        from ..serving.app import serve_model
    except ImportError as e:
        raise missing_serve_extra("serve", e) from None

    app = serve_model(
        args.model,
        load_options=model_placement(args),
        allow_catalogue_edits=args.allow_catalogue_edits,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    size = len(app.state.pipeline.tokenizer.catalog)
    print(f"serving {args.model} ({size} items) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
