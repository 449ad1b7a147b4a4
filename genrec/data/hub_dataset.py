"""Datasets from anywhere: a local folder, a Hub dataset repository, or ``datasets`` objects in memory.

On the Hub a genrec dataset is its folder as it is (``items.jsonl``, ``sequences.jsonl`` or
``interactions.csv``, embeddings and semantic IDs as ``.npy``) with a dataset card whose ``configs:`` make it
``load_dataset``-loadable: ``load_dataset(REPO, "items")`` (one row per item: ``item_id`` and its fields) and
``load_dataset(REPO, "sequences")`` (``user_id``, ``items`` oldest first). ``genrec push-dataset`` writes it;
``--data REPO`` (and ``load_dataset_dir(REPO)``) downloads it once into the HF cache.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataError

HUB_DATASET_ID = re.compile(r"[\w.-]+/[\w.-]+")
CONFIGS = {"items": "items.jsonl", "sequences": "sequences.jsonl"}


def dataset_folder(source: Any, revision: str | None = None, token: str | None = None) -> Path:
    """A local dataset folder for ``source``: the folder itself; the HF-cache snapshot of a Hub dataset repo
    ``user/name``; or, for a ``DatasetDict`` / dict with ``items`` and ``sequences`` datasets, a folder
    written from them."""
    if hasattr(source, "keys") and not isinstance(source, (str, Path)):
        return _folder_from_datasets(source)
    if not is_hub_dataset_id(str(source)):
        return Path(source)
    from ..hub import fetch_from_hub

    return fetch_from_hub(str(source), revision=revision, token=token, repo_type="dataset")


def is_hub_dataset_id(source) -> bool:
    """``user/name`` that is not a local path."""
    return isinstance(source, str) and bool(HUB_DATASET_ID.fullmatch(source)) and not Path(source).exists()


def data_source(source) -> str:
    """How a run records its data: a Hub dataset id as given, a local folder as its absolute path."""
    return str(source) if is_hub_dataset_id(source) else str(Path(source).resolve())


def _folder_from_datasets(splits) -> Path:
    """A temporary dataset folder holding ``splits["items"]`` and ``splits["sequences"]`` as JSON lines."""
    missing = [name for name in CONFIGS if name not in splits]
    if missing:
        raise DataError(
            f"a dataset given as datasets objects needs {sorted(CONFIGS)} (one row per item with item_id; one "
            f"row per user with user_id and items, oldest first); missing {missing}, got {sorted(splits.keys())}"
        )
    folder = Path(tempfile.mkdtemp(prefix="genrec-data-"))
    for name, file in CONFIGS.items():
        with open(folder / file, "w", encoding="utf-8") as fh:
            for row in splits[name]:
                fh.write(json.dumps(row) + "\n")
    return folder


DATASET_CARD = """---
configs:
- config_name: items
  data_files: items.jsonl
- config_name: sequences
  data_files: {sequences}
tags:
- genrec
- recommendation
---

# {name}

A genrec dataset ({n_items} items, {n_users} users, {n_interactions} interactions; modalities with
embeddings or semantic IDs: {modalities}). Published with `genrec push-dataset` (genrec {version}).

- `load_dataset("{repo_id}", "items")`: one row per item, `item_id` and its fields (title, brand, ...).
- `load_dataset("{repo_id}", "sequences")`: one row per user, `user_id` and `items`, oldest first.
- `genrec train --data {repo_id} ...` reads the whole folder, embeddings and semantic IDs included.
"""


def push_dataset(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None):
    """Publish dataset folder ``folder`` (checked by the loader first) to dataset repo ``repo_id`` in one commit,
    with a card whose configs make ``load_dataset`` read it. Returns the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from .. import __version__
    from ..hub import _create_repo, _hub_errors, hub_timeouts
    from .loading import SEQUENCES_FILE, load_dataset_dir

    folder = Path(folder)
    data = load_dataset_dir(folder, quiet=True)
    if not (folder / SEQUENCES_FILE).is_file():
        raise DataError(f"{folder}: push-dataset publishes {SEQUENCES_FILE} (write one with `genrec prepare`)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != "README.md")
    api = HfApi(token=token)
    with hub_timeouts() as hub_wait:
        repo_id = _create_repo(api, repo_id, private, hub_wait, repo_type="dataset")
        card = DATASET_CARD.format(
            name=repo_id.split("/")[-1],
            repo_id=repo_id,
            sequences=SEQUENCES_FILE,
            n_items=data.n_items,
            n_users=len(data.sequences),
            n_interactions=sum(len(s) for s in data.sequences.values()),
            modalities=", ".join(sorted({*data.embeddings, *data.semantic_ids})) or "none",
            version=__version__,
        )
        operations = [CommitOperationAdd(p.name, str(p)) for p in files]
        operations.append(CommitOperationAdd("README.md", card.encode()))
        with _hub_errors("upload to", repo_id):
            return api.create_commit(
                repo_id, operations, commit_message=f"genrec dataset ({len(files)} files)", repo_type="dataset"
            )
