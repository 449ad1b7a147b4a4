"""bf16 autocast against fp32 for the ``cpu`` profile on the CPU: training steps per second, and what the same
number of steps learns (validation only).

    python benchmarks/precision.py [--data DIR ...] [--steps 400] [--rounds 2] [--run-dir runs/precision]

For each dataset (both shared Instruments copies by default), ``--rounds`` rounds of two runs, fp32 then bf16,
each ``genrec train --profile cpu`` (the tasks the dataset's IDs allow) for exactly ``--steps`` steps from the
same seed; alternating spreads load from elsewhere over both. Speed: steps over Trainer's ``train_runtime``
(which includes the one evaluation of the loss at the end, alike in both). Learning: the validation loss of the
trainer's validation rows and NDCG@10 / HR@10 of the saved model on the validation users, ranked in
fp32 as every saved model ranks, on the first ``--valid-users`` validation users. A precision only buys speed if the loss per step holds.

Writes benchmarks/results/precision.{md,json}: ``{"<dataset>": {"fp32": {...}, "bf16": {...}}, "amx": bool}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from arms import Arm, smoke_settings, train_arm
from machine import results_path, write_results

from genrec import GenRecPipeline
from genrec.data import load_dataset_dir
from genrec.eval.evaluation import evaluate_pipeline
from genrec.trainers.generator_config import cpu_has_bf16_matmul

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = [SHARED / "amazon-instruments-mql4grec", SHARED / "amazon-instruments-lcrec"]
PRECISIONS = ("fp32", "bf16")


def one_run(data_dir: Path, data, precision: str, round_: int, args) -> dict:
    out = args.run_dir / f"{data_dir.name}-{precision}-r{round_}"
    settings = {"bf16": precision == "bf16", "max_steps": args.steps, "seed": args.seed}
    settings |= smoke_settings(max_users=args.max_users)
    recipe = train_arm(Arm("cpu", args=settings), data_dir, out)
    record = json.loads((out / "genrec_train_config.json").read_text())
    evals = [e["eval_loss"] for e in record["log_history"] if "eval_loss" in e]
    metrics, _ = evaluate_pipeline(
        GenRecPipeline.from_pretrained(out), data, split="valid", max_users=args.max_users or args.valid_users
    )
    return {
        "steps_per_s": round(args.steps / record["train_metrics"]["train_runtime"], 3),
        "train_loss": round(record["train_metrics"]["train_loss"], 4),
        "valid_loss": evals[-1] if evals else None,
        "valid_ndcg@10": round(metrics["NDCG@10"], 5),
        "valid_hr@10": round(metrics["HR@10"], 5),
        "valid_users": metrics["n_users"],
        "recipe": recipe,
    }


def summarise(runs: list[dict]) -> dict:
    """The runs of one precision: median speed over the rounds; learning from the first round (same seed)."""
    first = runs[0]
    return {
        "steps_per_s": statistics.median(r["steps_per_s"] for r in runs),
        "steps_per_s_each": [r["steps_per_s"] for r in runs],
        **{k: first[k] for k in ("train_loss", "valid_loss", "valid_ndcg@10", "valid_hr@10", "valid_users")},
        "recipe": first["recipe"],
    }


def report(results: dict, args) -> str:
    rows = []
    for name, r in results.items():
        speedup = r["bf16"]["steps_per_s"] / r["fp32"]["steps_per_s"]
        for p in PRECISIONS:
            m = r[p]
            each = " / ".join(f"{s:.2f}" for s in m["steps_per_s_each"])
            rows.append(
                f"| {name} | {p} | {m['steps_per_s']:.2f} ({each}) | {'%.2fx' % speedup if p == 'bf16' else ''} | "
                f"{m['train_loss']} | {m['valid_loss']} | {m['valid_ndcg@10']:.4f} | {m['valid_hr@10']:.4f} |"
            )
    return "\n".join(
        [
            "# bf16 autocast against fp32 on the CPU (the `cpu` profile)",
            "",
            f"AMX (native bf16 matmuls) on this CPU: {cpu_has_bf16_matmul()}. Each run trains exactly {args.steps} "
            f"steps from seed {args.seed}; {args.rounds} rounds of fp32 then bf16 (speed: the median, each round in "
            f"brackets). Validation: the loss of the trainer's validation rows, and NDCG@10 / HR@10 of the saved "
            "model (ranked in fp32) on the first validation users; the test split is not ranked.",
            "",
            "| dataset | precision | steps/s | speed-up | mean train loss | valid loss | valid NDCG@10 | valid HR@10 |",
            "|---|---|---|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--valid-users", type=int, default=2000, help="validation users ranked (the first N)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/precision"))
    p.add_argument("--max-users", type=int, default=None, help="smoke: validate on this many users, write nothing")
    args = p.parse_args()
    results = {}
    for data_dir in args.data:
        data = load_dataset_dir(data_dir)
        runs = {p: [] for p in PRECISIONS}
        for round_ in range(args.rounds):
            for precision in PRECISIONS:
                runs[precision].append(one_run(data_dir, data, precision, round_, args))
        results[data_dir.name] = {p: summarise(r) for p, r in runs.items()}
        print(json.dumps({p: {k: v for k, v in m.items() if k != "recipe"} for p, m in results[data_dir.name].items()}))
    text = report(results, args)
    print(text)
    write_results(
        results_path("precision"), text, {**results, "amx": cpu_has_bf16_matmul()}, smoke=bool(args.max_users)
    )


if __name__ == "__main__":
    main()
