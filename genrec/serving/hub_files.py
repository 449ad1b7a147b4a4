"""Deployable files on the Hub: the Inference Endpoints handler ``genrec push`` adds to a model repository,
and the Gradio Space ``genrec push --space`` writes (app.py, requirements.txt, a README with the Space's
metadata) that loads a pushed model from the Hub."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import __version__

logger = logging.getLogger(__name__)

HANDLER_FILE = "handler.py"
REQUIREMENTS_FILE = "requirements.txt"


def endpoint_files() -> dict[str, bytes]:
    """``handler.py`` (``genrec.serving.handler`` as it is) and the requirements it runs with."""
    handler = (Path(__file__).parent / "handler.py").read_bytes()
    return {HANDLER_FILE: handler, REQUIREMENTS_FILE: f"genrec=={__version__}\n".encode()}


SPACE_APP = '''"""genrec demo Space for {model_repo}: search items, build a history, see the recommendations."""

import os

from genrec.serving.batcher import load_on_model_thread
from genrec.serving.demo import build_demo

MODEL_REPO = {model_repo!r}

# loaded on the thread that will rank: torch ranks about 1.7x slower on another one (genrec.serving.batcher)
pipeline, model_thread = load_on_model_thread(MODEL_REPO, revision=os.environ.get("GENREC_MODEL_REVISION"))
demo = build_demo(pipeline, title={title!r}, model_thread=model_thread)

if __name__ == "__main__":
    demo.launch()
'''

SPACE_README = """---
title: {title_yaml}
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
models:
- {model_repo}
tags:
- genrec
- recommendation
---

# {title}

A demo of the genrec model [{model_repo}](https://huggingface.co/{model_repo}): search the catalogue by
title, pick items as a history and press Recommend; each recommendation says which modality's beam search
found it. The cold-start panel adds a new item next to a picked one and shows where it lands. Written by
`genrec push --space` (genrec {version}).
"""


def endpoint_handler_operations(operations) -> list:
    """Commit operations adding ``endpoint_files`` to a model repository, unless the folder brings its own
    files of those names (``genrec.hub.push_to_hub``)."""
    from huggingface_hub import CommitOperationAdd

    given = {op.path_in_repo for op in operations}
    return [CommitOperationAdd(path, content) for path, content in endpoint_files().items() if path not in given]


def space_files(model_repo: str, title: str | None = None) -> dict[str, bytes]:
    """The Space's files for the model at Hub repo ``model_repo``."""
    import gradio

    title = title or f"genrec: {model_repo}"
    values = {
        "model_repo": model_repo,
        "title": title,
        "title_yaml": json.dumps(title),  # a JSON string is YAML, quoted: "genrec: user/m" has a colon
        "gradio_version": gradio.__version__,
        "version": __version__,
    }
    return {
        "app.py": SPACE_APP.format(**values).encode(),
        REQUIREMENTS_FILE: f"genrec[serve]=={__version__}\n".encode(),
        "README.md": SPACE_README.format(**values).encode(),
    }


def push_space(
    space_id: str, model_repo: str, *, private: bool = False, token: str | None = None, title: str | None = None
):
    """Publish a Gradio Space (``genrec.serving.hub_files.space_files``) that demos Hub model ``model_repo``;
    one commit, the Space created when missing. Returns the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from ..hub import _create_repo, _hub_errors, hub_timeouts

    files = space_files(model_repo, title)
    api = HfApi(token=token)
    with hub_timeouts() as hub_wait:
        space_id = _create_repo(api, space_id, private, hub_wait, repo_type="space")
        with _hub_errors("upload to", space_id):
            info = api.create_commit(
                space_id,
                [CommitOperationAdd(path, content) for path, content in files.items()],
                commit_message=f"genrec demo Space for {model_repo} (genrec {__version__})",
                repo_type="space",
            )
    logger.info("pushed the demo Space for %s to %s", model_repo, info.commit_url)
    return info
