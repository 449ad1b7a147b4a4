"""Publishing per-user rankings as a Hub dataset (``--push-rankings`` of ``genrec evaluate`` / ``recommend``),
through the same privacy rule, timeouts and error messages as ``genrec.hub``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

from .errors import GenRecError
from .hub import HubError, _create_repo, _hub_errors, _is_private, hub_timeouts

logger = logging.getLogger("genrec.hub")


def _ranked(row: Mapping, where: str, key_items: str = "items", key_scores: str = "scores"):
    items, scores = row.get(key_items), row.get(key_scores)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise GenRecError(f"{where}: '{key_items}' must be a list of item id strings")
    if not isinstance(scores, list) or len(scores) != len(items):
        raise GenRecError(f"{where}: '{key_scores}' must be a list of one score per item ({len(items)})")
    return items, [float(s) for s in scores]


def rankings_dataset(rows: Iterable[Mapping]):
    """Rows -> a ``datasets.Dataset`` with one column set per modality.

    A row: ``{"user_id": str, "history": [item ids], "items": [ranked ids], "scores": [floats],
    "per_modality": {"text": {"items": [...], "scores": [...]}, "image": {...}}}``. Columns:
    ``user_id, history, items, scores`` and ``{modality}_items, {modality}_scores``; a modality a
    row lacks gets empty lists there.
    """
    import datasets

    rows = list(rows)
    if not rows:
        raise GenRecError("no rankings to publish: the list of rows is empty")
    modalities = sorted({m for r in rows for m in (r.get("per_modality") or {})})
    columns: dict[str, list] = {c: [] for c in ("user_id", "history", "items", "scores")}
    for m in modalities:
        columns[f"{m}_items"], columns[f"{m}_scores"] = [], []
    for i, row in enumerate(rows):
        where = f"rankings row {i}"
        if not isinstance(row.get("user_id"), str):
            raise GenRecError(f"{where}: 'user_id' must be a string")
        history = row.get("history")
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise GenRecError(f"{where}: 'history' must be a list of item id strings")
        items, scores = _ranked(row, where)
        columns["user_id"].append(row["user_id"])
        columns["history"].append(history)
        columns["items"].append(items)
        columns["scores"].append(scores)
        per = row.get("per_modality") or {}
        for m in modalities:
            m_items, m_scores = _ranked(per[m], f"{where}, per_modality.{m}") if m in per else ([], [])
            columns[f"{m}_items"].append(m_items)
            columns[f"{m}_scores"].append(m_scores)
    ids, floats = datasets.List(datasets.Value("string")), datasets.List(datasets.Value("float64"))
    features = datasets.Features(
        {c: datasets.Value("string") if c == "user_id" else floats if c.endswith("scores") else ids for c in columns}
    )
    return datasets.Dataset.from_dict(columns, features=features)


RANKINGS_COLUMNS = ("user_id", "history", "items", "scores")


def check_rankings_target(repo_id: str, token: str | None = None) -> None:
    """The Hub twin of ``check_output_file``: rankings go only into a dataset that is new, empty, or holds
    genrec rankings (parquet under ``data/`` and a card listing their columns). Pushing a split into any
    other dataset would replace that split's files. Called before the ranking work, and again by
    :func:`push_rankings`."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    with hub_timeouts(), _hub_errors("check the rankings dataset", repo_id):
        try:
            files = HfApi(token=token).list_repo_files(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            return
        data = [f for f in files if f.startswith("data/") and f.endswith(".parquet")]
        foreign = sorted(set(files) - set(data) - {".gitattributes", "README.md"})
        card = (
            Path(hf_hub_download(repo_id, "README.md", repo_type="dataset", token=token)).read_text(encoding="utf-8")
            if data and "README.md" in files
            else ""
        )
    if foreign or (data and not all(f"- name: {c}\n" in card for c in RANKINGS_COLUMNS)):
        raise HubError(
            f"the dataset {repo_id!r} exists and does not hold genrec rankings ("
            + (f"it has {', '.join(foreign[:3])}" if foreign else "its card lacks their columns")
            + "); publishing a split there would replace its files: choose another --push-rankings name"
        )


def push_rankings(
    rows: Iterable[Mapping],
    repo_id: str,
    *,
    split: str = "test",
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
):
    """Publish per-user rankings (see :func:`rankings_dataset`) as the ``split`` of dataset ``repo_id``.

    Uses ``datasets.Dataset.push_to_hub`` (parquet shards + dataset card), so
    ``datasets.load_dataset(repo_id)`` reads them back. Rows carry user histories: ``private=True`` makes the
    dataset private, an existing public one included (the rule :func:`push_to_hub` follows), and a push to a
    public dataset says in one warning that it publishes them. Returns its ``CommitInfo``.
    """
    from huggingface_hub import HfApi

    dataset = rankings_dataset(rows)
    check_rankings_target(repo_id, token)
    with hub_timeouts() as hub_wait:
        api = HfApi(token=token)
        repo_id = _create_repo(api, repo_id, private, hub_wait, repo_type="dataset")
        if not private and not _is_private(api, repo_id, "dataset", hub_wait):
            logger.warning(
                "publishing %d users' histories in the public dataset %s (--private keeps them private)",
                len(dataset),
                repo_id,
            )
        with _hub_errors("publish rankings to", repo_id):
            return dataset.push_to_hub(
                repo_id,
                split=split,
                private=private,
                token=token,
                commit_message=commit_message or f"Upload genrec rankings ({len(dataset)} users, split {split})",
            )
