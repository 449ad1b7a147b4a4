"""genrec serve: the HTTP JSON recommendation service over one model (``genrec.serving.app``)."""

from __future__ import annotations

from .arguments import non_negative, port, positive


def add_arguments(p):
    from ..serving.batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS

    p.add_argument("--model", required=True, help="pipeline folder (genrec train output) or Hub repo id")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
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
    from ..errors import GenRecError

    try:
        import uvicorn

        from ..serving.app import serve_model
    except ImportError as e:
        raise GenRecError(f"genrec serve needs the serve extra ({e.name} is missing): pip install 'genrec[serve]'")

    app = serve_model(
        args.model,
        device=args.device,
        revision=args.revision,
        allow_catalogue_edits=args.allow_catalogue_edits,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    size = len(app.state.pipeline.tokenizer.catalog)
    print(f"serving {args.model} ({size} items) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
