"""Read a genrec dataset directory into leave-one-out ``datasets`` splits.

Internally items are referred to by their *row index* (line order of ``items.jsonl``, which is also
the row order of every per-item array); the user's own ids are kept in ``GenRecData.item_ids``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from datasets import Dataset, DatasetDict

from .. import DEFAULT_MAX_HISTORY
from ..errors import DataError, check_item_id, parse_json_object

logger = logging.getLogger("genrec.data")

ITEMS_FILE = "items.jsonl"
SEQUENCES_FILE = "sequences.jsonl"
INTERACTIONS_FILE = "interactions.csv"
EMBEDDING_FILES = {"text": "text_emb.npy", "image": "image_emb.npy"}
SID_FILES = {"text": "sid_text.npy", "image": "sid_image.npy"}
# Larger embedding norms make float32 squared distances overflow (1e15^2 = 1e30 is still safe).
MAX_EMBEDDING_NORM = 1e15
# A quantizer folder's row order: one {"item_id": ..., <modality>: [codes]} line per sid_*.npy row.
ITEM_CODES_FILE = "item_codes.jsonl"
# Column that orders a user's interactions in interactions.csv; `position` is what the shared
# MQL4GRec export has (no timestamps were released).
ORDER_COLUMNS = ("timestamp", "position")

MIN_INTERACTIONS = 3  # leave-one-out needs a train target, a valid target and a test target


@dataclass
class GenRecData:
    """A loaded dataset directory.

    ``splits`` has ``train``/``valid``/``test`` with columns ``user_id`` (str), ``history``
    (list of item row indices, oldest first, at most ``max_history``) and ``target`` (row index).
    """

    path: Path
    item_ids: list[Any]
    items: list[dict]
    sequences: dict[str, list[int]]
    splits: DatasetDict
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    semantic_ids: dict[str, np.ndarray] = field(default_factory=dict)
    dropped_users: int = 0
    max_history: int = DEFAULT_MAX_HISTORY

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_index(self, item_id: Any) -> int:
        """Row index of a user-facing item id (int or str; compared as text)."""
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise DataError(f"unknown item id {item_id!r} (not in {self.path / ITEMS_FILE})") from None

    def __post_init__(self):
        self._index = {str(i): n for n, i in enumerate(self.item_ids)}

    def missing_rows(self, modality: str) -> np.ndarray:
        """Row indices whose ``modality`` embedding is all-NaN (the modality is missing)."""
        emb = self.embeddings.get(modality)
        if emb is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isnan(emb).all(axis=1))

    def summary(self) -> dict:
        n_inter = sum(len(s) for s in self.sequences.values())
        return {
            "path": str(self.path),
            "users": len(self.sequences),
            "items": self.n_items,
            "interactions": n_inter,
            "train_rows": len(self.splits["train"]),
            "valid_rows": len(self.splits["valid"]),
            "test_rows": len(self.splits["test"]),
            "dropped_users": self.dropped_users,
            "max_history": self.max_history,
            "modalities": {
                "embeddings": {m: list(a.shape) for m, a in self.embeddings.items()},
                "semantic_ids": {m: list(a.shape) for m, a in self.semantic_ids.items()},
                "missing_rows": {m: int(len(self.missing_rows(m))) for m in self.embeddings},
            },
        }

    def summary_line(self) -> str:
        s = self.summary()
        mods = ", ".join(
            [f"{m} emb {'x'.join(map(str, sh))}" for m, sh in s["modalities"]["embeddings"].items()]
            + [f"{m} ids {'x'.join(map(str, sh))}" for m, sh in s["modalities"]["semantic_ids"].items()]
        )
        return (
            f"{s['path']}: {s['users']} users, {s['items']} items, {s['interactions']} interactions; "
            f"train/valid/test rows {s['train_rows']}/{s['valid_rows']}/{s['test_rows']}; "
            f"dropped {s['dropped_users']} users with < {MIN_INTERACTIONS} interactions; "
            f"modalities: {mods or 'none'}"
        )


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as fh:  # decoded per line, so bytes that are not UTF-8 are named by their line
        for lineno, raw in enumerate(fh, start=1):
            line = utf8_line(raw, path, lineno)
            if not line.strip():
                continue
            yield lineno, parse_json_object(line, f"{path}:{lineno}")


def utf8_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}:{lineno}: not UTF-8 text (byte {raw[e.start : e.start + 1]!r} at column "
            f"{e.start + 1}); save the file as UTF-8"
        ) from None


def read_items(path: Path) -> list[dict]:
    """Read items.jsonl; every line needs a unique ``item_id``."""
    if not path.is_file():
        raise DataError(f"{path}: missing file (every dataset needs {ITEMS_FILE})")
    items, first_line = [], {}
    for lineno, obj in read_jsonl(path):
        if "item_id" not in obj:
            raise DataError(f"{path}:{lineno}: missing field 'item_id'")
        check_item_id(obj["item_id"], f"{path}:{lineno}")
        key = str(obj["item_id"])
        if key in first_line:
            raise DataError(
                f"{path}:{lineno}: duplicate item_id {obj['item_id']!r} (first seen on line {first_line[key]})"
            )
        first_line[key] = lineno
        items.append(obj)
    if not items:
        raise DataError(f"{path}: no items")
    return items


def _resolve(index: dict[str, int], item_id: Any, where: str) -> int:
    try:
        return index[str(item_id)]
    except KeyError:
        raise DataError(f"{where}: unknown item_id {item_id!r} (not in {ITEMS_FILE})") from None


def read_sequences(path: Path, index: dict[str, int]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("user_id", "items"):
            if key not in obj:
                raise DataError(f"{where}: missing field '{key}'")
        if not isinstance(obj["items"], list):
            raise DataError(f"{where}: field 'items' must be a list of item ids")
        user = str(obj["user_id"])
        if user in seqs:
            raise DataError(f"{where}: duplicate user_id {obj['user_id']!r}")
        seqs[user] = [_resolve(index, i, f"{where}: field 'items'") for i in obj["items"]]
    return seqs


def read_histories(path: str | Path) -> list[tuple[int, str, list]]:
    """A histories file for batch recommendation: JSON lines ``{"user_id": ..., "history": [item ids]}``.

    Returns (line number, user id, history) per line; the ids are resolved later, by the model's catalogue.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing file (expected JSON lines with 'user_id' and 'history')")
    rows, first_line = [], {}
    for lineno, obj in read_jsonl(path):
        for key in ("user_id", "history"):
            if key not in obj:
                raise DataError(f"{path}:{lineno}: missing field '{key}'")
        if not isinstance(obj["history"], list):
            raise DataError(f"{path}:{lineno}: field 'history' must be a list of item ids")
        user = str(obj["user_id"])
        if user in first_line:  # ranked twice, and two records of one user in the output
            raise DataError(
                f"{path}:{lineno}: user {user!r} again (first on line {first_line[user]}); give one history per user"
            )
        first_line[user] = lineno
        rows.append((lineno, user, obj["history"]))
    if not rows:
        raise DataError(f"{path}: no histories")
    return rows


def read_interactions(path: Path, index: dict[str, int]) -> dict[str, list[int]]:
    """Read interactions.csv and order each user's items by timestamp (ties keep file order)."""
    with open(path, "rb") as fh:
        reader = csv.reader(utf8_line(raw, path, lineno) for lineno, raw in enumerate(fh, start=1))
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file (expected header user_id,item_id,timestamp)")
        header = [h.strip() for h in header]
        order_col = next((c for c in ORDER_COLUMNS if c in header), None)
        missing = [c for c in ("user_id", "item_id") if c not in header]
        if missing or order_col is None:
            need = missing + ([] if order_col else ["timestamp"])
            raise DataError(f"{path}:1: header lacks column(s) {', '.join(need)}")
        cu, ci, ct = header.index("user_id"), header.index("item_id"), header.index(order_col)
        rows: dict[str, list[tuple[float, int, int]]] = {}
        for n, row in enumerate(reader):
            lineno = n + 2
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            try:
                t = float(row[ct])
            except ValueError:
                raise DataError(f"{path}:{lineno}: field '{order_col}' is not a number: {row[ct]!r}") from None
            item = _resolve(index, row[ci].strip(), f"{path}:{lineno}: field 'item_id'")
            rows.setdefault(row[cu].strip(), []).append((t, n, item))
    return {u: [i for _, _, i in sorted(r)] for u, r in rows.items()}


def read_embeddings(path: Path, n_items: int) -> np.ndarray:
    """A float [n_items, dim] array; an all-NaN row marks a missing modality for that item."""
    arr = _load_npy(path)
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a 2-D array [n_items, dim], got shape {arr.shape}")
    if arr.shape[0] != n_items:
        raise DataError(f"{path}: has {arr.shape[0]} rows but {ITEMS_FILE} has {n_items} items")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{path}: expected float16/float32 values, got {arr.dtype}")
    arr = arr.astype(np.float32)
    nan = np.isnan(arr)
    partial = np.flatnonzero(nan.any(axis=1) & ~nan.all(axis=1))
    if len(partial):
        raise DataError(
            f"{path}: row {partial[0]} has some NaN values but not all ({len(partial)} such rows); "
            "a missing modality must be a whole row of NaN"
        )
    inf = np.flatnonzero(np.isinf(arr).any(axis=1))
    if len(inf):
        raise DataError(f"{path}: row {inf[0]} has infinite values ({len(inf)} such rows)")
    if nan.all():
        raise DataError(f"{path}: every row is NaN, so no item has this modality; remove the file to go without it")
    # Squared distances of such rows overflow float32 (the quantizer's arithmetic) to inf.
    norms = np.sqrt(np.nansum(np.square(arr, dtype=np.float64), axis=1))
    huge = np.flatnonzero(norms > MAX_EMBEDDING_NORM)
    if len(huge):
        raise DataError(
            f"{path}: row {huge[0]} has norm {norms[huge[0]]:.3g} (> {MAX_EMBEDDING_NORM:g}; "
            f"{len(huge)} such rows); normalise the embeddings"
        )
    return arr


def read_semantic_ids(path: Path, n_items: int, allow_missing: bool = False) -> np.ndarray:
    """Int codes [n_items, levels]; with ``allow_missing`` a whole row of -1 marks a missing modality."""
    arr = _load_npy(path)
    if arr.ndim != 2 or arr.shape[0] != n_items:
        raise DataError(f"{path}: expected shape [{n_items}, levels], got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{path}: expected integer codes, got {arr.dtype}")
    bad = (arr < 0).any(axis=1)
    if allow_missing:
        bad &= ~(arr == -1).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {row} has a negative code{'' if not allow_missing else ' (only whole -1 rows allowed)'}"
        )
    return arr.astype(np.int64)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise DataError(f"{path}: cannot read as .npy ({e})") from None


def leave_one_out(
    sequences: dict[str, list[int]], max_history: int = DEFAULT_MAX_HISTORY
) -> tuple[DatasetDict, dict[str, list[int]], int]:
    """Test = last item, valid = second-to-last, train = every prefix of the rest with >= 1 history item."""
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    cols = {s: {"user_id": [], "history": [], "target": []} for s in ("train", "valid", "test")}

    def add(split, user, hist, target):
        cols[split]["user_id"].append(user)
        cols[split]["history"].append(hist[-max_history:])
        cols[split]["target"].append(target)

    kept, dropped = {}, 0
    for user, seq in sequences.items():
        if len(seq) < MIN_INTERACTIONS:
            dropped += 1
            continue
        kept[user] = seq
        for t in range(1, len(seq) - 2):
            add("train", user, seq[:t], seq[t])
        add("valid", user, seq[:-2], seq[-2])
        add("test", user, seq[:-1], seq[-1])
    splits = DatasetDict({s: Dataset.from_dict(c) for s, c in cols.items()})
    return splits, kept, dropped


def load_dataset_dir(
    path, max_history: int = DEFAULT_MAX_HISTORY, interactions: str = "auto", quiet: bool = False
) -> GenRecData:
    """Load and validate a dataset directory (format in DESIGN.md / README), a Hub dataset repo ``user/name``
    holding one (``genrec.data.hub_dataset``), or ``datasets`` objects (``{"items": ..., "sequences": ...}``).

    ``interactions`` picks the source: "sequences" (sequences.jsonl), "csv" (interactions.csv) or
    "auto" (sequences.jsonl when present, else interactions.csv). The summary line is logged unless ``quiet``
    (a caller that prints it itself, or only validates).
    """
    from .hub_dataset import dataset_folder

    path = dataset_folder(path)
    if not path.is_dir():
        raise DataError(f"{path}: dataset directory does not exist (nor a Hub dataset repo id user/name)")
    items = read_items(path / ITEMS_FILE)
    index = {str(it["item_id"]): n for n, it in enumerate(items)}

    seq_path, csv_path = path / SEQUENCES_FILE, path / INTERACTIONS_FILE
    if interactions not in ("auto", "sequences", "csv"):
        raise ValueError(f"interactions must be auto, sequences or csv, got {interactions!r}")
    use_seq = interactions == "sequences" or (interactions == "auto" and seq_path.is_file())
    src = seq_path if use_seq else csv_path
    if not src.is_file():
        raise DataError(f"{src}: missing file (a dataset needs {SEQUENCES_FILE} or {INTERACTIONS_FILE})")
    sequences = read_sequences(src, index) if use_seq else read_interactions(src, index)

    embeddings = {m: read_embeddings(path / f, len(items)) for m, f in EMBEDDING_FILES.items() if (path / f).is_file()}
    sids = {m: read_semantic_ids(path / f, len(items)) for m, f in SID_FILES.items() if (path / f).is_file()}

    splits, kept, dropped = leave_one_out(sequences, max_history)
    if not kept:
        raise DataError(
            f"{src}: no user has >= {MIN_INTERACTIONS} interactions ({dropped} users dropped), so there is "
            "nothing to train or evaluate on"
        )
    data = GenRecData(
        path=path,
        item_ids=[it["item_id"] for it in items],
        items=items,
        sequences=kept,
        splits=splits,
        embeddings=embeddings,
        semantic_ids=sids,
        dropped_users=dropped,
        max_history=max_history,
    )
    if not quiet:
        logger.info(data.summary_line())
    return data
