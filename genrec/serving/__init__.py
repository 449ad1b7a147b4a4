"""Serving a trained pipeline: the HTTP JSON service (``genrec serve``, ``create_app``) with micro-batching,
the web demo (``genrec app``) and the Hub's deployable files (Space, Inference Endpoints handler).
Needs the ``serve`` extra (``pip install "genrec[serve]"``); importing ``genrec`` does not import it."""
