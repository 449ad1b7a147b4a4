"""`genrec prepare amazon` on small files in the raw Amazon Reviews 2018 format, written here."""

import csv
import gzip
import json

import numpy as np
import pytest

from genrec.cli import main
from genrec.data import load_dataset_dir
from genrec.data.prepare_amazon import PrepareConfig, dedupe_earliest, k_core, prepare_amazon
from genrec.errors import DataError

CORE_USERS = [f"U{n}" for n in range(1, 7)]
CORE_ITEMS = [f"I{n}" for n in range(1, 7)]


def _reviews():
    """(user, asin, time) rows in file order.

    A 6x6 block is 5-core. Item X has 4 raters, U1-U3 and W (dropped in round 1); user W rated I1..I4 and X, so it
    falls to 4 after X goes (dropped in round 2). NOTITLE/NOMETA are rated by everyone but lack a
    title / metadata. (U1, I1) repeats later; (U2, I2) repeats with an EARLIER time further down the
    file. U3 has two items at the same time (I3 before I4 in the file).
    """
    rows = []
    for u, user in enumerate(CORE_USERS):
        for n, item in enumerate(CORE_ITEMS):
            rows.append((user, item, 1000 + 10 * n + u))
    rows = [r if r[:2] != ("U3", "I4") else ("U3", "I4", 1000 + 20 + 2) for r in rows]  # tie with (U3, I3)
    rows += [(user, "X", 5000) for user in CORE_USERS[:3]]
    rows += [("W", item, 6000 + n) for n, item in enumerate(["I1", "I2", "I3", "I4", "X"])]
    rows += [(user, "NOTITLE", 7000) for user in CORE_USERS] + [(user, "NOMETA", 7000) for user in CORE_USERS]
    rows += [("U1", "I1", 9000), ("U2", "I2", 1)]
    return rows


def _meta_lines():
    lines = []
    for n, asin in enumerate(CORE_ITEMS + ["X"]):
        obj = {
            "asin": asin,
            "title": f"Guitar &amp; strings <b>model {n}</b>",
            "brand": "Fender",
            "category": ["Musical Instruments", "Guitars &amp; Basses", "Musical Instruments"],
            "description": ["Solid body.", "<p>Maple neck</p>"],
            "imageURLHighRes": [f"https://img.example/{asin}.jpg"],
        }
        if asin == "I6":
            del obj["imageURLHighRes"]
        # Older dumps: Python literals instead of JSON (single quotes).
        lines.append(repr(obj) if asin == "I2" else json.dumps(obj))
    lines.append(json.dumps({"asin": "I1", "title": "a repeated metadata line (ignored)"}))
    lines.append(json.dumps({"asin": "NOTITLE", "title": "  <span> </span> ", "brand": "Acme"}))
    lines.append(json.dumps({"asin": "UNRATED", "title": "nobody bought this"}))
    return lines


def _write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def _review_lines(rows):
    return [
        json.dumps({"reviewerID": u, "asin": a, "overall": 5.0, "unixReviewTime": t, "reviewText": "ok"})
        for u, a, t in rows
    ]


@pytest.fixture
def raw(tmp_path):
    rows = _reviews()
    reviews = _write_gz(tmp_path / "Toy.json.gz", _review_lines(rows))
    meta = _write_gz(tmp_path / "meta_Toy.json.gz", _meta_lines())
    ratings = tmp_path / "Toy.csv"
    with open(ratings, "w", newline="") as fh:
        csv.writer(fh).writerows([(a, u, "5.0", t) for u, a, t in rows])
    return {"reviews": reviews, "meta": meta, "ratings": ratings, "dir": tmp_path}


def _read_out(out):
    items = [json.loads(line) for line in open(out / "items.jsonl")]
    with open(out / "interactions.csv", newline="") as fh:
        inter = list(csv.DictReader(fh))
    return items, inter, json.loads((out / "prepare_report.json").read_text())


def test_reviews_five_core_time_order_and_report(raw):
    out = raw["dir"] / "ds"
    prepare_amazon(out, meta=raw["meta"], reviews=raw["reviews"])
    items, inter, report = _read_out(out)

    assert [it["item_id"] for it in items] == CORE_ITEMS  # X (round 1), NOTITLE, NOMETA gone
    assert {r["user_id"] for r in inter} == set(CORE_USERS)  # W gone in round 2
    assert len(inter) == 36
    i1 = items[0]
    assert i1["title"] == "Guitar & strings model 0"  # HTML unescaped and stripped
    assert i1["categories"] == ["Musical Instruments", "Guitars & Basses"]
    assert i1["description"] == "Solid body. Maple neck"
    assert i1["brand"] == "Fender" and i1["image_url"] == "https://img.example/I1.jpg"
    assert items[1]["title"] == "Guitar & strings model 1"  # the Python-literal line was read
    assert "image_url" not in items[5]

    # Sorted by user, then time; repeated pairs keep the earliest; ties keep file order.
    keys = [(r["user_id"], int(r["timestamp"])) for r in inter]
    assert keys == sorted(keys)
    u1 = [(r["item_id"], int(r["timestamp"])) for r in inter if r["user_id"] == "U1"]
    assert u1[0] == ("I1", 1000)
    u2 = [(r["item_id"], int(r["timestamp"])) for r in inter if r["user_id"] == "U2"]
    assert u2[0] == ("I2", 1) and [i for i, _ in u2].count("I2") == 1
    u3 = [r["item_id"] for r in inter if r["user_id"] == "U3"]
    assert u3 == ["I1", "I2", "I3", "I4", "I5", "I6"]

    steps = {s["step"]: s for s in report["steps"]}
    assert steps["read"] == {"step": "read", "interactions": 36 + 3 + 5 + 12 + 2, "users": 7, "items": 9}
    assert steps["item has metadata"]["items"] == 8
    assert steps["item has title text"]["items"] == 7
    assert steps["drop repeated (user, item), keep earliest"]["interactions"] == 36 + 3 + 5
    assert steps["5-core"]["rounds"] == 3  # X, then W, then a check that nothing changes
    assert report["final"] == {"interactions": 36, "users": 6, "items": 6, "rounds": 3}
    assert report["files"]["meta"]["repeated_asin_skipped"] == 1

    data = load_dataset_dir(out)
    assert data.n_items == 6 and len(data.sequences) == 6
    assert [data.item_ids[r] for r in data.sequences["U2"]][0] == "I2"


def test_ratings_csv_gives_the_same_dataset(raw):
    a, b = raw["dir"] / "from_reviews", raw["dir"] / "from_ratings"
    prepare_amazon(a, meta=raw["meta"], reviews=raw["reviews"])
    prepare_amazon(b, meta=raw["meta"], ratings=raw["ratings"])
    for name in ("items.jsonl", "interactions.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_require_image_and_min_core(raw):
    out = raw["dir"] / "img"
    report = prepare_amazon(out, meta=raw["meta"], reviews=raw["reviews"], config=PrepareConfig(require_image=True))
    items, inter, _ = _read_out(out)
    assert [it["item_id"] for it in items] == CORE_ITEMS[:5]  # I6 has no image URL
    assert len(inter) == 30 and all("image_url" in it for it in items)
    assert "item has image URL" in [s["step"] for s in report["steps"]]

    # With a 4-core, X (4 raters) and W (5 items) survive.
    prepare_amazon(out, meta=raw["meta"], reviews=raw["reviews"], config=PrepareConfig(min_core=4))
    items, inter, _ = _read_out(out)
    assert "X" in [it["item_id"] for it in items] and "W" in {r["user_id"] for r in inter}

    with pytest.raises(DataError, match="no interactions left.*--min-core"):
        prepare_amazon(raw["dir"] / "none", meta=raw["meta"], reviews=raw["reviews"], config=PrepareConfig(min_core=7))
    assert not (raw["dir"] / "none").exists()


def test_malformed_lines_fail_with_file_and_line_or_are_counted(raw):
    lines = _review_lines(_reviews())
    lines.insert(3, '{"reviewerID": "U9", "asin": ')  # line 4: truncated
    lines.insert(7, json.dumps({"reviewerID": "U9", "asin": "I1"}))  # line 8: no unixReviewTime
    bad = _write_gz(raw["dir"] / "bad.json.gz", lines)
    out = raw["dir"] / "ds"
    with pytest.raises(DataError, match=r"bad\.json\.gz:4: neither JSON nor a Python literal"):
        prepare_amazon(out, meta=raw["meta"], reviews=bad)
    assert not out.exists()

    report = prepare_amazon(out, meta=raw["meta"], reviews=bad, config=PrepareConfig(skip_malformed=True))
    assert report["files"]["reviews"]["malformed_skipped"] == 2
    good = raw["dir"] / "good"
    prepare_amazon(good, meta=raw["meta"], reviews=raw["reviews"])
    assert (out / "interactions.csv").read_bytes() == (good / "interactions.csv").read_bytes()

    (raw["dir"] / "bad.csv").write_text("item,user,rating,timestamp\n")
    with pytest.raises(DataError, match=r"bad\.csv:1: timestamp is not a number"):
        prepare_amazon(out, meta=raw["meta"], ratings=raw["dir"] / "bad.csv")
    (raw["dir"] / "short.csv").write_text("I1,U1,5.0\n")
    with pytest.raises(DataError, match=r"short\.csv:1: expected 4 comma-separated fields"):
        prepare_amazon(out, meta=raw["meta"], ratings=raw["dir"] / "short.csv")


def test_kcore_and_dedupe_helpers():
    # A chain: removing one user cascades through items and users.
    u = np.array([0, 0, 1, 1, 2, 2, 3])
    i = np.array([0, 1, 1, 2, 2, 3, 3])
    keep, rounds = k_core(u, i, 2)
    assert len(keep) == 0 and rounds >= 2
    keep, rounds = k_core(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 2)
    assert keep.tolist() == [0, 1, 2, 3] and rounds == 1
    # Same pair three times: the earliest wins; the tie at t=5 keeps the first in the file.
    assert dedupe_earliest(np.array([0, 0, 0, 1]), np.array([7, 7, 7, 7]), np.array([9, 5, 5, 1])).tolist() == [1, 3]


def test_cli(raw, capsys):
    out = raw["dir"] / "cli"
    rc = main(["prepare", "amazon", "--reviews", str(raw["reviews"]), "--meta", str(raw["meta"]), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "5-core" in printed and "6 users, 6 items, 36 interactions" in printed
    rc = main(
        [
            "prepare",
            "amazon",
            "--ratings",
            str(raw["dir"] / "missing.csv"),
            "--meta",
            str(raw["meta"]),
            "--out",
            str(out),
        ]
    )
    assert rc == 2 and "missing.csv: file does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --reviews and --ratings are exclusive
        main(["prepare", "amazon", "--reviews", "a", "--ratings", "b", "--meta", "m", "--out", str(out)])
