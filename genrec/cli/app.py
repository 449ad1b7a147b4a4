"""genrec app: the web demo over one model (``genrec.serving.demo``)."""

from __future__ import annotations

from .arguments import port


def add_arguments(p):
    p.add_argument("--model", required=True, help="pipeline folder (genrec train output) or Hub repo id")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=port, default=7860, help="port to listen on (default: 7860, Gradio's)")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")


def run(args):
    import os

    from ..errors import GenRecError

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local demo phones nobody
    try:
        from ..serving.demo import build_demo
    except ImportError as e:
        raise GenRecError(f"genrec app needs the serve extra ({e.name} is missing): pip install 'genrec[serve]'")
    from ..pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(args.model, device=args.device, revision=args.revision)
    build_demo(pipe, title=f"genrec: {args.model}").launch(server_name=args.host, server_port=args.port)
    return 0
