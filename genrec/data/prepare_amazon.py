"""Convert one category of the public Amazon Reviews 2018 dump into a genrec dataset directory.

Inputs (Ni, Li, McAuley, EMNLP 2019; https://nijianmo.github.io/amazon/): the reviews file
``<Category>.json.gz`` (JSON lines with ``reviewerID``, ``asin``, ``unixReviewTime``) or the
ratings-only CSV ``<Category>.csv`` (no header: ``item,user,rating,timestamp``), plus the metadata
file ``meta_<Category>.json.gz`` (``asin``, ``title``, ``description``, ``brand``, ``category``,
``imageURL``/``imageURLHighRes``). Older dumps write Python literals instead of strict JSON; both
are read. Plain or gzipped files both work.

Protocol (MQL4GRec's ``amazon18_data_process.py``, which MACRec reuses):

1. keep interactions whose item has metadata with title text (and, with ``require_image``, an
   image URL);
2. drop repeated (user, item) pairs, keeping the earliest by timestamp (ties: file order) -- our
   choice: MQL4GRec's export has no repeats, and a repeated item would leak into leave-one-out;
3. iterate k-core filtering until every user and every item has >= ``min_core`` interactions
   (5-core in MQL4GRec/MACRec);
4. order each user's interactions by time (ties keep file order).

Output: ``items.jsonl`` (``item_id`` = ASIN, sorted; ``title``, ``brand``, ``categories``,
``description``, ``image_url`` when present), ``interactions.csv`` (``user_id,item_id,timestamp``
sorted by user then time) and ``prepare_report.json`` (counts after every step).
"""

from __future__ import annotations

import ast
import csv
import gzip
import html
import io
import json
import logging
import re
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError, json_error_detail
from ..utils import atomic_output_dir, check_output_dir
from .loading import INTERACTIONS_FILE, ITEMS_FILE

logger = logging.getLogger("genrec.data.prepare")

REPORT_FILE = "prepare_report.json"
DEFAULT_MIN_CORE = 5  # MQL4GRec / MACRec: 5-core users and items
REVIEW_FIELDS = ("reviewerID", "asin", "unixReviewTime")
RATINGS_COLUMNS = ("item", "user", "rating", "timestamp")
# First non-empty wins: 2018 dumps have imageURLHighRes/imageURL lists, 2014 dumps an imUrl string.
IMAGE_FIELDS = ("imageURLHighRes", "imageURL", "imUrl")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_MAX_WARNINGS = 5  # malformed lines logged one by one before only counting them


@dataclass
class PrepareConfig:
    min_core: int = DEFAULT_MIN_CORE
    require_image: bool = False
    skip_malformed: bool = False  # count malformed lines instead of stopping at the first one


class _Malformed(Exception):
    """One bad input line; turned into a DataError (file:line) or counted."""


class _LineReader:
    """Iterate the non-empty lines of a plain or gzipped text file, with a tqdm bar and error policy."""

    def __init__(self, path: Path, desc: str, skip_malformed: bool):
        if not path.is_file():
            raise DataError(f"{path}: file does not exist")
        self.path, self.desc, self.skip_malformed = path, desc, skip_malformed
        self.lines = self.malformed = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        with open(self.path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        try:
            with opener(self.path, "rt", encoding="utf-8", newline="") as fh:
                for lineno, line in enumerate(tqdm(fh, desc=self.desc, unit=" lines", disable=None), start=1):
                    if line.strip():
                        self.lines += 1
                        yield lineno, line
        except (OSError, EOFError, UnicodeDecodeError) as e:  # truncated gzip, bad bytes
            raise DataError(f"{self.path}: cannot read ({e})") from None

    def bad(self, lineno: int, why: str) -> None:
        if not self.skip_malformed:
            raise DataError(f"{self.path}:{lineno}: {why} (use --skip-malformed to skip such lines)")
        self.malformed += 1
        if self.malformed <= _MAX_WARNINGS:
            logger.warning("%s:%d: %s; skipped", self.path, lineno, why)

    def stats(self) -> dict:
        return {"path": str(self.path), "lines": self.lines, "malformed_skipped": self.malformed}


def _parse_object(line: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        try:  # older dumps are Python literals ({'asin': ...}), not strict JSON
            obj = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise _Malformed(f"neither JSON nor a Python literal ({json_error_detail(e)})") from None
    if not isinstance(obj, dict):
        raise _Malformed(f"expected an object, got {type(obj).__name__}")
    return obj


def clean_text(value) -> str:
    """HTML-unescaped, tag-free, whitespace-collapsed text; lists are joined with spaces."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(t for t in (clean_text(v) for v in value) if t)
    text = _TAG.sub(" ", html.unescape(str(value)))
    return _SPACE.sub(" ", text).strip()


def _categories(obj: dict) -> list[str]:
    cats = obj.get("category")
    if cats is None and isinstance(obj.get("categories"), list):  # 2014 dumps: list of category paths
        cats = [c for path in obj["categories"] for c in (path if isinstance(path, list) else [path])]
    seen: dict[str, None] = {}
    for c in cats if isinstance(cats, list) else [cats]:
        c = clean_text(c)
        if c:
            seen.setdefault(c, None)
    return list(seen)


def _image_url(obj: dict) -> str | None:
    for key in IMAGE_FIELDS:
        urls = obj.get(key)
        for url in urls if isinstance(urls, list) else [urls]:
            if isinstance(url, str) and url.strip():
                return url.strip()
    return None


class _Interactions:
    """Interactions as compact integer columns (a category can have tens of millions of rows)."""

    def __init__(self):
        self.user_index: dict[str, int] = {}
        self.item_index: dict[str, int] = {}
        self.u, self.i, self.t = array("q"), array("q"), array("q")

    def add(self, user: str, item: str, ts: int) -> None:
        self.u.append(self.user_index.setdefault(user, len(self.user_index)))
        self.i.append(self.item_index.setdefault(item, len(self.item_index)))
        self.t.append(ts)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.frombuffer(a, dtype=np.int64).copy() for a in (self.u, self.i, self.t))


def _timestamp(value) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise _Malformed(f"timestamp is not a number: {value!r}") from None
    if not np.isfinite(f) or f != int(f):
        raise _Malformed(f"timestamp is not a whole number of seconds: {value!r}")
    return int(f)


def read_reviews(path: Path, skip_malformed: bool = False) -> tuple[_Interactions, dict]:
    reader, inter = _LineReader(path, f"reading {path.name}", skip_malformed), _Interactions()
    for lineno, line in reader:
        try:
            obj = _parse_object(line)
            missing = [f for f in REVIEW_FIELDS if f not in obj]
            if missing:
                raise _Malformed(f"missing field(s) {', '.join(repr(f) for f in missing)}")
            inter.add(str(obj["reviewerID"]), str(obj["asin"]), _timestamp(obj["unixReviewTime"]))
        except _Malformed as e:
            reader.bad(lineno, str(e))
    return inter, reader.stats()


def read_ratings(path: Path, skip_malformed: bool = False) -> tuple[_Interactions, dict]:
    reader, inter = _LineReader(path, f"reading {path.name}", skip_malformed), _Interactions()
    for lineno, line in reader:
        try:
            row = next(csv.reader(io.StringIO(line)))
            if len(row) != len(RATINGS_COLUMNS):
                raise _Malformed(
                    f"expected {len(RATINGS_COLUMNS)} comma-separated fields ({','.join(RATINGS_COLUMNS)}, "
                    f"no header), got {len(row)}"
                )
            inter.add(row[1].strip(), row[0].strip(), _timestamp(row[3].strip()))
        except _Malformed as e:
            reader.bad(lineno, str(e))
    return inter, reader.stats()


def read_meta(path: Path, wanted: dict[str, int], skip_malformed: bool = False) -> tuple[dict[str, dict], dict]:
    """Items of ``wanted`` (asin -> code) that have metadata; the first line of a repeated asin wins."""
    reader, items, duplicates = _LineReader(path, f"reading {path.name}", skip_malformed), {}, 0
    for lineno, line in reader:
        try:
            obj = _parse_object(line)
            if "asin" not in obj:
                raise _Malformed("missing field 'asin'")
        except _Malformed as e:
            reader.bad(lineno, str(e))
            continue
        asin = str(obj["asin"])
        if asin not in wanted:
            continue
        if asin in items:
            duplicates += 1  # the 2018 metadata repeats some products verbatim
            continue
        item = {
            "item_id": asin,
            "title": clean_text(obj.get("title")),
            "brand": clean_text(obj.get("brand")),
            "categories": _categories(obj),
            "description": clean_text(obj.get("description")),
        }
        url = _image_url(obj)
        if url:
            item["image_url"] = url
        items[asin] = item
    stats = reader.stats() | {"repeated_asin_skipped": duplicates}
    return items, stats


def _counts(step: str, u: np.ndarray, i: np.ndarray, **extra) -> dict:
    row = {"step": step, "interactions": int(len(u)), "users": int(len(np.unique(u))), "items": int(len(np.unique(i)))}
    row.update(extra)
    logger.debug("%s: %d interactions, %d users, %d items", step, row["interactions"], row["users"], row["items"])
    return row


def dedupe_earliest(u: np.ndarray, i: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Indices of the earliest interaction of every (user, item) pair (ties: first in file), in file order."""
    order = np.lexsort((np.arange(len(u)), t, i, u))  # by user, item, time, file position
    su, si = u[order], i[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (su[1:] != su[:-1]) | (si[1:] != si[:-1])
    return np.sort(order[first])


def k_core(u: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Indices kept by iterated k-core filtering (every user and item >= k rows), and the rounds it took."""
    keep, rounds = np.arange(len(u)), 0
    while len(keep):
        rounds += 1
        uc, ic = np.bincount(u[keep]), np.bincount(i[keep])
        ok = (uc[u[keep]] >= k) & (ic[i[keep]] >= k)
        if ok.all():
            break
        keep = keep[ok]
    return keep, rounds


def prepare_amazon(
    out: str | Path,
    meta: str | Path,
    reviews: str | Path | None = None,
    ratings: str | Path | None = None,
    config: PrepareConfig | None = None,
    overwrite: bool = False,
) -> dict:
    """Write a dataset directory from raw Amazon 2018 files (exactly one of ``reviews``/``ratings``).

    Returns the report that is also written to ``prepare_report.json``.
    """
    config = config or PrepareConfig()
    check_output_dir(out, "dataset", inputs=[meta, reviews, ratings], overwrite=overwrite)
    if (reviews is None) == (ratings is None):
        raise DataError("give exactly one interactions file: reviews (<Category>.json.gz) or ratings (<Category>.csv)")
    if config.min_core < 1:
        raise DataError(f"min_core must be >= 1, got {config.min_core}")
    source = Path(reviews if reviews is not None else ratings)
    reader = read_reviews if reviews is not None else read_ratings
    inter, inter_stats = reader(source, config.skip_malformed)
    items, meta_stats = read_meta(Path(meta), inter.item_index, config.skip_malformed)
    u, i, t = inter.columns()
    steps = [_counts("read", u, i)]
    if not len(u):
        raise DataError(f"{source}: no interactions")

    item_asin = np.array(list(inter.item_index), dtype=object)
    u, i, t = _filter_interactions(u, i, t, items, item_asin, config, steps)
    if not len(u):
        raise DataError(
            f"no interactions left after filtering {source} (steps: "
            + "; ".join(f"{s['step']}: {s['interactions']}" for s in steps)
            + f"); try a smaller --min-core than {config.min_core}"
            + (" or drop --require-image" if config.require_image else "")
        )

    user_ids = np.array(list(inter.user_index), dtype=object)
    u, i, t = _by_user_then_time(user_ids, u, i, t)
    kept_items = sorted(item_asin[np.unique(i)])
    report = _report(config, "reviews" if reviews is not None else "ratings", inter_stats, meta_stats, steps)

    out = Path(out)
    with atomic_output_dir(out, "dataset", inputs=[meta, reviews, ratings], overwrite=overwrite) as tmp:
        _write_dataset(tmp, [items[asin] for asin in kept_items], zip(user_ids[u], item_asin[i], t.tolist()), report)
    logger.info("wrote %s", out)
    return report


def _filter_interactions(
    u, i, t, items: dict[str, dict], item_asin: np.ndarray, config: PrepareConfig, steps: list[dict]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Protocol steps 1-3 (usable items, earliest of repeated pairs, k-core); appends each one's counts to ``steps``."""
    # Item filters, applied before k-core so that the core is computed on usable items only.
    for step, ok_item in _item_filters(items, item_asin, config.require_image):
        keep = ok_item[i]
        u, i, t = u[keep], i[keep], t[keep]
        steps.append(_counts(step, u, i))

    keep = dedupe_earliest(u, i, t)
    u, i, t = u[keep], i[keep], t[keep]
    steps.append(_counts("drop repeated (user, item), keep earliest", u, i))

    keep, rounds = k_core(u, i, config.min_core)
    u, i, t = u[keep], i[keep], t[keep]
    steps.append(_counts(f"{config.min_core}-core", u, i, rounds=rounds))
    return u, i, t


def _item_filters(items: dict[str, dict], item_asin: np.ndarray, require_image: bool) -> list[tuple[str, np.ndarray]]:
    """(step name, per-item mask) of the item conditions of protocol step 1, in the order they apply."""
    has_meta = np.array([a in items for a in item_asin], dtype=bool)
    has_title = np.array([bool(items[a]["title"]) if a in items else False for a in item_asin], dtype=bool)
    filters = [("item has metadata", has_meta), ("item has title text", has_title)]
    if require_image:
        has_image = np.array([a in items and "image_url" in items[a] for a in item_asin], dtype=bool)
        filters.append(("item has image URL", has_image))
    return filters


def _by_user_then_time(user_ids: np.ndarray, u, i, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Protocol step 4: rows by user id, then time, then file position (rows are still in file order here)."""
    user_rank = np.empty(len(user_ids), dtype=np.int64)
    user_rank[np.argsort(user_ids, kind="stable")] = np.arange(len(user_ids))
    order = np.lexsort((np.arange(len(u)), t, user_rank[u]))
    return u[order], i[order], t[order]


def _report(
    config: PrepareConfig, interactions_kind: str, inter_stats: dict, meta_stats: dict, steps: list[dict]
) -> dict:
    """The prepare_report.json record: settings, what was read from each file, and the counts after every step."""
    return {
        "source": "Amazon Reviews 2018",
        "settings": asdict(config)
        | {
            "repeated_pairs": "keep the earliest (user, item) interaction by timestamp; ties keep file order",
            "text_filter": "items need a non-empty title after HTML cleaning",
        },
        "files": {interactions_kind: inter_stats, "meta": meta_stats},
        "steps": steps,
        "final": {k: v for k, v in steps[-1].items() if k != "step"},
    }


def _write_dataset(folder: Path, items: list[dict], interactions, report: dict) -> None:
    """The dataset files: items.jsonl, interactions.csv (rows of user, item, timestamp) and the report."""
    with open(folder / ITEMS_FILE, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    with open(folder / INTERACTIONS_FILE, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "timestamp"])
        w.writerows(interactions)
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
