"""Training levers at an equal wall-clock budget, each against the ``cpu`` profile as its family of arms ran:
issue 14's on ``benchmarks/frozen/levers-cpu-before-issue14.yaml``, issue 33's on ``frozen/cpu-issue33.yaml``.

    python benchmarks/levers.py --minutes 12                       # every arm, 12 minutes each
    python benchmarks/levers.py --minutes 12 --arms base,batch64   # a subset (results accumulate)
    python benchmarks/levers.py --minutes 12 --arms dropout0+no_implicit   # levers combined
    python benchmarks/levers.py --data ../shared/data/amazon-instruments-lcrec --minutes 20 --arms base33,label_smoothing

Every arm trains genrec on ``--data`` (Amazon Instruments, MQL4GRec's copy, by default) with one change to
its profile (a lever) or several (``a+b``), for ``--minutes`` of training on the clock
(``max_train_minutes``: schedule planned for the budget, validation ranking every tenth of it). Judged on **validation only**: NDCG@10 / HR@10 /
coverage@10 of the fused ranking of a fixed sample of 2,000 validation users (the trainer's budget
evaluation), at the best evaluation. The test split is never ranked here.

Writes benchmarks/results/levers-<dataset folder>-budget<M>.md and .json (issue 14's arms ran before the name
held the dataset: ``levers-budget12``); arms already finished are read back from
``runs/<that name>/<arm>-s<seed>/lever_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from arms import FROZEN, Arm, smoke_settings, train_arm
from machine import describe, git_commit, results_path, write_results

import genrec
from genrec.layout import TRAIN_CONFIG_FILE
from genrec.pipeline import GenRecPipeline
from genrec.trainers.budget import MINUTES_KEY, learning_curve

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
ALIGNMENT_TASKS = ["item2image", "image2item", "seqitem2image", "seqimage2item"]
RANK_EVAL_USERS = 2000  # GenRecTrainingArguments.rank_eval_users' default: the budget run's validation sample
CORRECTIONS = (0.0, 0.15, 0.3, 0.5, 1.0)

# What issue 14's arms start from: the cpu profile as they ran (six tasks, MACRec's dropout 0.1), not today's.
FROZEN_PROFILE = FROZEN / "levers-cpu-before-issue14.yaml"
# What issue 33's arms start from: the cpu profile when they ran (seqrec + seqimage + implicit loss, no dropout).
ISSUE33_PROFILE = FROZEN / "cpu-issue33.yaml"

# lever -> its changes to the frozen profile; an arm is one lever or several joined by "+" (later levers winning)
LEVERS = {
    "base": Arm(FROZEN_PROFILE.name, about="the cpu profile before issue 14: all six tasks + implicit"),
    "no_explicit": Arm(
        FROZEN_PROFILE.name,
        args={"tasks": ["seqrec", "seqimage"]},
        about="seqrec + seqimage only (no cross-modal tasks): ~2x the sequential steps per minute",
    ),
    "alignment_quarter": Arm(
        FROZEN_PROFILE.name,
        args={"task_weights": {t: 0.25 for t in ALIGNMENT_TASKS}},
        about="cross-modal tasks: a random quarter of their rows each epoch",
    ),
    "batch64": Arm(
        FROZEN_PROFILE.name,
        args={"per_device_train_batch_size": 64, "learning_rate": 1e-3},
        about="batch 64 instead of 256 (4x the updates per epoch), lr 1e-3",
    ),
    "lr5e-3": Arm(FROZEN_PROFILE.name, args={"learning_rate": 5e-3}, about="learning rate 5e-3 instead of 2e-3"),
    "dropout0": Arm(FROZEN_PROFILE.name, model={"dropout_rate": 0.0}, about="no dropout (a short budget under-fits)"),
    "no_implicit": Arm(FROZEN_PROFILE.name, args={"implicit": False}, about="no implicit (contrastive) alignment loss"),
    "base33": Arm(ISSUE33_PROFILE.name, about="the cpu profile at issue 33: seqrec + seqimage + implicit, no dropout"),
    "label_smoothing": Arm(
        ISSUE33_PROFILE.name,
        args={"id_label_smoothing": 0.1},
        about="label smoothing 0.1 over the codes legal after each prefix",
    ),
    "weight_decay": Arm(
        ISSUE33_PROFILE.name,
        args={"weight_decay": 0.1},
        about="AdamW weight decay 0.1 (the profile: 0): a regulariser that costs no steps, unlike dropout",
    ),
}
# Each arm is compared with the base arm of its starting profile.
BASES = {FROZEN_PROFILE.name: "base", ISSUE33_PROFILE.name: "base33"}
# The item_encoder and item_embeddings arms lost on validation; their encoders were removed from the package
# (README's lever table keeps their results), so they cannot be re-run.


def arm_settings(arm: str) -> Arm:
    """The arm named ``arm``, such as ``dropout0+no_explicit``."""
    levers = arm.split("+")
    unknown = [lever for lever in levers if lever not in LEVERS]
    if unknown:
        raise SystemExit(f"unknown levers {unknown} in arm {arm!r}; choose from {list(LEVERS)}")
    combined = LEVERS[levers[0]]
    for lever in levers[1:]:
        combined = combined + LEVERS[lever]
    return combined


def run_arm(arm: str, args) -> dict:
    out = args.run_dir / f"{arm}-s{args.seed}"
    done = out / "lever_metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    start = time.perf_counter()
    recipe = train_arm(
        arm_settings(arm).with_args(
            seed=args.seed, max_train_minutes=args.minutes, **smoke_settings(args.max_steps, args.max_users)
        ),
        args.data,
        out / "model",
    )
    record = json.loads((out / "model" / TRAIN_CONFIG_FILE).read_text())
    evals = [e for e in record["log_history"] if "eval_ndcg@10" in e]
    best = max(evals, key=lambda e: e["eval_ndcg@10"])
    result = {
        "best": {k: best[f"eval_{k}"] for k in ("ndcg@10", "hr@10", "coverage@10")} | {"minutes": best[MINUTES_KEY]},
        "final_ndcg@10": evals[-1]["eval_ndcg@10"],
        "epochs": round(record["log_history"][-1]["epoch"], 2),
        "curve": learning_curve(record["log_history"]),
        "wall_s": round(time.perf_counter() - start, 1),
        "commit": git_commit(),
        "recipe": recipe,
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def correction_sweep(arm: str, args) -> dict:
    """Ranking-time lever on a finished arm's kept (best-validation) model: the popularity correction a
    (``GenRecPipeline.rank``), on the trainer's validation sample; stored beside the arm's result."""
    from genrec.data import load_dataset_dir
    from genrec.eval import ranking_metrics

    out = args.run_dir / f"{arm}-s{args.seed}"
    done = json.loads((out / "lever_metrics.json").read_text())
    pipe = GenRecPipeline.from_pretrained(out / "model")
    data = load_dataset_dir(args.data, max_history=pipe.max_history)
    valid = data.splits["valid"].shuffle(seed=args.seed).select(range(RANK_EVAL_USERS))  # the trainer's sample
    sweep = done.get("popularity_correction", {})
    for a in CORRECTIONS:
        if f"{a:g}" in sweep:
            continue
        res = pipe.rank(valid["history"], modality="fused", k=10, popularity_correction=a)
        m = ranking_metrics(res.rows, valid["target"], ks=(10,), n_items=data.n_items)
        sweep[f"{a:g}"] = {"ndcg@10": m["NDCG@10"], "hr@10": m["HR@10"], "coverage@10": m["coverage@10"]}
        print(arm, "popularity_correction", a, json.dumps(sweep[f"{a:g}"]), flush=True)
    done["popularity_correction"] = sweep
    (out / "lever_metrics.json").write_text(json.dumps(done, indent=1))
    return done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=12, help="training budget per arm")
    p.add_argument("--arms", default=",".join(LEVERS), help="comma-separated arms: levers, or levers joined by +")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--run-dir", type=Path, help="arms' models and metrics (default runs/levers-<dataset>-budget<M>)")
    p.add_argument("--max-steps", type=int, help="smoke run: stop each arm after this many steps")
    p.add_argument("--max-users", type=int, help="smoke run: validate on this many users")
    p.add_argument(
        "--corrections",
        action="store_true",
        help="also sweep the ranking-time popularity correction on each arm's kept model",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for arm in arms:
        arm_settings(arm)  # fail on a typo before an hour of training
    args.name = f"levers-{args.data.resolve().name}-budget{args.minutes:g}"
    args.run_dir = args.run_dir or REPO / "runs" / args.name
    for arm in arms:
        result = run_arm(arm, args)
        print(arm, json.dumps(result["best"]), flush=True)
        if args.corrections and set(f"{a:g}" for a in CORRECTIONS) - set(result.get("popularity_correction", {})):
            correction_sweep(arm, args)
    results = {}  # every finished arm of this budget, this seed or another: base first, then by name
    for done in sorted(
        args.run_dir.glob("*-s*/lever_metrics.json"),
        key=lambda f: (not f.parent.name.startswith(tuple(f"{b}-s" for b in BASES.values())), f.parent.name),
    ):
        arm, seed = done.parent.name.rsplit("-s", 1)
        results[f"{arm} (seed {seed})"] = (arm, json.loads(done.read_text()))
    write_report(results, args)


def write_report(results: dict, args) -> None:
    def reference(arm: str) -> float | None:
        """The mean best NDCG@10 of the finished runs of ``arm``'s base (its starting profile's)."""
        base = BASES.get(arm_settings(arm).profile)
        values = [r["best"]["ndcg@10"] for a, r in results.values() if a == base]
        return sum(values) / len(values) if values else None

    lines = [
        "| arm | change | best valid NDCG@10 | vs base | HR@10 | coverage@10 | at minute | final NDCG@10 | epochs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (arm, r) in results.items():
        b = r["best"]
        ref = reference(arm)
        rel = f"{b['ndcg@10'] / ref - 1:+.1%}" if ref else ""
        lines.append(
            f"| {name} | {arm_settings(arm).about} | {b['ndcg@10']:.4f} | {rel} | {b['hr@10']:.4f} | "
            f"{b['coverage@10']:.4f} | {b['minutes']:.1f} | {r['final_ndcg@10']:.4f} | {r['epochs']} |"
        )
    curves = ["| arm | (training minutes, validation NDCG@10) |", "|---|---|"]
    curves += [
        f"| {name} | " + ", ".join(f"({c['minutes']:.1f}, {c['valid_ndcg@10']:.4f})" for c in r["curve"]) + " |"
        for name, (_, r) in results.items()
    ]
    sweeps = [
        "| arm | " + " | ".join(f"a={a:g}: NDCG@10 / coverage@10" for a in CORRECTIONS) + " |",
        "|---|" + "---:|" * len(CORRECTIONS),
    ]
    sweeps += [
        f"| {name} | "
        + " | ".join(
            f"{r['popularity_correction'][f'{a:g}']['ndcg@10']:.4f} / {r['popularity_correction'][f'{a:g}']['coverage@10']:.4f}"
            for a in CORRECTIONS
        )
        + " |"
        for name, (_, r) in results.items()
        if "popularity_correction" in r
    ]
    print("\n".join(lines))
    text = "\n".join(
        [
            f"# Training levers at a {args.minutes:g}-minute budget ({args.data.resolve().name}, validation)",
            "",
            f"Command: `python benchmarks/levers.py --data {args.data} --minutes {args.minutes:g} --arms <arm,...>` "
            "(one arm at a time on an otherwise idle machine; results accumulate).",
            "",
            f"Machine: {describe('cpu')}; genrec {genrec.__version__}.",
            "",
            "Each arm: genrec with one change (a lever) or several (`a+b`) to the `cpu` profile as its family of "
            f"arms ran, frozen in `benchmarks/frozen/`: issue 14's (`base` ...) on `{FROZEN_PROFILE.name}` (six "
            f"tasks + implicit loss, dropout 0.1), issue 33's (`base33` ...) on `{ISSUE33_PROFILE.name}`; each arm's "
            "whole recipe is in the JSON, and 'vs base' compares it with its family's base. Trained for "
            f"{args.minutes:g} minutes on the clock (cosine schedule planned for the budget, 2% warmup), evaluated "
            "every tenth of the budget on a fixed sample of 2,000 validation users (fused ranking where there are "
            "two modalities, 20 beams, whole catalogue, history items not excluded). Best evaluation reported. A "
            "single seed on 2,000 users moves NDCG@10 by about +-0.005: differences under ~6% are not resolved. "
            "The test split is not ranked.",
            "",
            *lines,
            "",
            "## Ranking-time popularity correction (`--corrections`)",
            "",
            "The kept (best-validation) model of an arm, ranked with scores `log p(ID | history) - a log P(ID)` (P: training "
            "interactions + 1 per item; `GenRecPipeline.rank(popularity_correction=a)`), same validation sample.",
            "",
            *(sweeps if len(sweeps) > 2 else ["not measured in this run"]),
            "",
            "## Curves",
            "",
            *curves,
            "",
        ]
    )
    out = results_path(args.name)
    payload = {name: {"arm": arm, "change": arm_settings(arm).about, **r} for name, (arm, r) in results.items()}
    write_results(out, text, payload)


if __name__ == "__main__":
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sys.exit(main())
