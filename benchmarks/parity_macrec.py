"""Per-epoch parity with the reference MACRec code: which difference makes our TIGER-style run learn less.

    python benchmarks/parity_macrec.py                       # every ablation arm on validation (~8 min each)
    python benchmarks/parity_macrec.py --arms ours,small_init --seeds 42,43
    python benchmarks/parity_macrec.py --arms adopted --split test   # the final test run

The setting is issue 13's: ``seqrec`` only on the released text IDs, the ``cpu`` profile's model
(2+2 layers, d_model 128, d_ff 512, d_kv 32, 6 heads, dropout 0.1), batch 256, lr 2e-3 cosine, 2%
warmup, exactly 3 epochs, history <= 20, 20 constrained beams. Each arm changes one thing (or the
adopted combination) and is ranked on every validation user (``--split valid``), never on test
unless asked. Two scoring rules: ours (an item is a hit; an ID shared by two items lists both) and
the reference's (``*_id_match``: the generated ID equals the target's ID, each ID counted once).

Writes benchmarks/results/parity-macrec.md and .json (arms already finished are read back from
``runs/parity-macrec/<arm>-s<seed>/parity_metrics.json``, so the tables accumulate across calls).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from arms import Arm, train_arm
from machine import describe, results_path, write_results

import genrec
from genrec.data import load_dataset_dir
from genrec.eval import ranking_metrics
from genrec.pipeline import GenRecPipeline

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
KEYS = ("HR@1", "HR@10", "NDCG@10")

# Every arm starts from issue 13's setting, frozen as it ran (not today's cpu profile).
FROZEN_PROFILE = "parity-macrec-issue13.yaml"
ARMS = {
    "ours": Arm(FROZEN_PROFILE, about="genrec before this change (T5 init, length-grouped, no weight decay)"),
    "small_init": Arm(
        FROZEN_PROFILE, model={"embedding_init_std": 0.01}, about="every token embedding starts near zero (N(0, 0.01))"
    ),
    "small_id_init": Arm(
        FROZEN_PROFILE,
        model={"embedding_init_std": 0.01, "embedding_init_rows": "ids"},
        about="semantic-ID token rows start near zero (N(0, 0.01)), special and task rows N(0, 1), as in the reference",
    ),
    "weight_decay": Arm(FROZEN_PROFILE, args={"weight_decay": 0.01}, about="AdamW weight decay 0.01 (the reference's)"),
    "random_batches": Arm(
        FROZEN_PROFILE,
        args={"batching": "random"},
        about="random batches instead of length-grouped ones (the reference's)",
    ),
    "length_buckets": Arm(
        FROZEN_PROFILE,
        args={"batching": "length_buckets"},
        about="length-grouped batches in random order (ours, trainers/sampling.py)",
    ),
    "prefix_softmax": Arm(
        FROZEN_PROFILE,
        model={"id_softmax": "prefix"},
        about="loss and beam scores normalised over the codes that may follow each prefix (issue 14's lever)",
    ),
    "adopted": Arm(
        FROZEN_PROFILE,
        model={"id_softmax": "prefix"},
        args={"batching": "length_buckets"},
        about="what this change adopts: prefix_softmax + length_buckets",
    ),
}

logger = logging.getLogger("parity")


def id_match_rows(rows: list[list[int]], targets: list[int], codes: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """Rewrite rankings so that one semantic ID is one entry: each row becomes the first catalogue row
    carrying its ID, repeats are dropped. Scoring these is the reference's rule (a hit when the
    generated ID is the target's ID)."""
    first: dict[bytes, int] = {}
    for r in range(len(codes)):
        first.setdefault(codes[r].tobytes(), r)
    canon = np.array([first[codes[r].tobytes()] for r in range(len(codes))])
    out = []
    for ranked in rows:
        seen = list(dict.fromkeys(int(canon[r]) for r in ranked))
        out.append(seen[:10])
    return out, [int(canon[t]) for t in targets]


def run_arm(arm: str, seed: int, data, args) -> dict:
    out = args.run_dir / f"{arm}-s{seed}"
    done = out / "parity_metrics.json"
    if done.is_file() and not args.fresh:
        record = json.loads(done.read_text())
        if args.split in record:
            return record
    recipe = train_arm(
        ARMS[arm].with_args(seed=seed, num_train_epochs=args.epochs), args.data, out, resume=not args.fresh
    )
    pipe = GenRecPipeline.from_pretrained(out)
    split = data.splits[args.split]
    t0 = time.perf_counter()
    res = pipe.rank(split["history"], modality="text", k=10, num_beams=20, batch_size=64)
    rank_s = time.perf_counter() - t0
    targets = split["target"]
    ours = ranking_metrics(res.rows, targets, ks=(1, 5, 10), n_items=data.n_items)
    id_rows, id_targets = id_match_rows(
        res.per_modality["text"][0], targets, np.asarray(pipe.tokenizer.catalog.codes["text"])
    )
    ref = ranking_metrics(id_rows, id_targets, ks=(1, 5, 10))
    tc = pipe.train_config
    epochs = tc["log_history"][-1]["epoch"]
    record = json.loads(done.read_text()) if done.is_file() else {}
    record.update(
        {
            "arm": arm,
            "seed": seed,
            "changes": ARMS[arm].about,
            "recipe": recipe,
            "train_minutes": round(tc["train_metrics"]["train_runtime"] / 60, 2),
            "epoch_minutes": round(tc["train_metrics"]["train_runtime"] / 60 / epochs, 2),
            args.split: {
                **{k: ours[k] for k in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")},
                **{f"{k}_id_match": ref[k] for k in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")},
                "coverage@10": ours["coverage@10"],
                "n_users": len(targets),
                "rank_s": round(rank_s, 1),
            },
        }
    )
    done.write_text(json.dumps(record, indent=1))
    return record


def collect(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/parity_metrics.json"))]


def table(records: list[dict], split: str) -> list[str]:
    cols = [*KEYS, *(f"{k}_id_match" for k in KEYS), "coverage@10"]
    lines = ["| arm | seed | " + " | ".join(cols) + " | min/epoch |", "|---|---:|" + "---:|" * (len(cols) + 1)]
    base = {r["seed"]: r[split]["NDCG@10"] for r in records if r["arm"] == "ours" and split in r}
    for r in sorted((r for r in records if split in r), key=lambda r: (list(ARMS).index(r["arm"]), r["seed"])):
        vals = [f"{r[split][c]:.4f}" for c in cols]
        if r["seed"] in base and r["arm"] != "ours":
            vals[2] += f" ({(r[split]['NDCG@10'] / base[r['seed']] - 1) * 100:+.0f}%)"
        lines.append(f"| {r['arm']} | {r['seed']} | " + " | ".join(vals) + f" | {r['epoch_minutes']} |")
    return lines


def write_report(args, data) -> None:
    records = collect(args.run_dir)
    valid, test = table(records, "valid"), table(records, "test")
    print("\n".join(valid), "\n".join(test), sep="\n\n")
    notes = (REPO / "benchmarks" / "parity_macrec.md").read_text(encoding="utf-8")
    text = "\n".join(
        [
            "# Parity with the reference MACRec code (TIGER-style, 3 epochs)",
            "",
            "Command: `python benchmarks/parity_macrec.py` (arms and seeds accumulate across calls; see its docstring).",
            "",
            f"Machine: {describe('cpu')}; transformers {transformers.__version__}, genrec {genrec.__version__}.",
            "",
            f"Data: `{args.data.name}`, {data.n_items} items; {len(data.splits['valid'])} validation / "
            f"{len(data.splits['test'])} test users, all ranked (whole catalogue, history items not excluded, 20 beams).",
            "",
            notes,
            "",
            "## Ablations (validation, every user)",
            "",
            "NDCG@10 in brackets: change against `ours` with the same seed. `*_id_match`: the reference's scoring rule.",
            "",
            *valid,
            "",
            "## Final run (test, every user)",
            "",
            *(test if len(test) > 2 else ["not run yet"]),
            "",
        ]
    )
    payload = {"arms": records}
    final = [r for r in records if r["arm"] == "adopted" and r["seed"] == 42 and "test" in r]
    if final:
        t = final[0]["test"]
        payload["tiger_3ep"] = {
            "ndcg@10": t["NDCG@10"],
            "ndcg@10_id_match": t["NDCG@10_id_match"],
            "hr@10": t["HR@10"],
            "hr@1": t["HR@1"],
            "train_minutes": final[0]["train_minutes"],
        }
    write_results(results_path("parity-macrec"), text, payload)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {list(ARMS)}")
    p.add_argument("--seeds", default="42", help="comma-separated seeds")
    p.add_argument("--split", choices=["valid", "test"], default="valid")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--run-dir", type=Path, default=REPO / "runs" / "parity-macrec")
    p.add_argument("--fresh", action="store_true", help="retrain arms that already have a model")
    p.add_argument("--report-only", action="store_true", help="rewrite the results from finished arms")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(os.cpu_count() or 1)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if set(arms) - set(ARMS):
        p.error(f"unknown arms {sorted(set(arms) - set(ARMS))}; choose from {list(ARMS)}")
    data = load_dataset_dir(args.data)
    if not args.report_only:
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm in arms:
                logger.info("=== %s seed %d (%s)", arm, seed, args.split)
                rec = run_arm(arm, seed, data, args)
                logger.info("%s seed %d: %s", arm, seed, json.dumps(rec[args.split]))
    write_report(args, data)


if __name__ == "__main__":
    sys.exit(main())
