"""genrec app: the web demo over one model (``genrec.serving.demo``)."""

from __future__ import annotations

from .arguments import add_served_model_arguments, missing_serve_extra, model_placement


def add_arguments(p):
    add_served_model_arguments(p, default_port=7860)  # Gradio's default port


def run(args):
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local demo phones nobody
    try:
        import gradio  # noqa: F401

        from ..serving.batcher import load_on_model_thread
        from ..serving.demo import build_demo
    except ImportError as e:
        raise missing_serve_extra("app", e) from None

    pipe, thread = load_on_model_thread(args.model, **model_placement(args))
    demo = build_demo(pipe, title=f"genrec: {args.model}", model_thread=thread)
    demo.launch(server_name=args.host, server_port=args.port)
    return 0
