"""bf16 autocast against fp32 for the ``cpu`` profile on the CPU: training speed, and what the same number of
steps learns (validation only).

    python benchmarks/precision.py [--data DIR ...] [--speed-steps 150] [--steps 400] [--run-dir runs/precision]

For each dataset (both shared Instruments copies by default):

1. Speed: the ``cpu`` profile's model and tasks (those the dataset's IDs allow), rows mode, forward + loss +
   backward + AdamW step with collation, in fp32 and under bf16 autocast, the two alternating step by step
   (``train_speed.measure_speed``): a machine's speed drifts by 10-20% between minutes here, which a run after
   a run would read as a precision's effect.
2. Learning: ``genrec train --profile cpu`` for exactly ``--steps`` steps from the same seed in each precision;
   the mean training loss, the validation loss of the trainer's validation rows, and NDCG@10 / HR@10 of the saved
   model (ranked in fp32, as every saved model ranks) on the first ``--valid-users`` validation users. Trainer's
   own steps per second of these runs are reported too (one run after the other: drift included).

A precision only buys time if the loss per step holds. Writes benchmarks/results/precision.{md,json}:
``{"<dataset>": {"fp32": {...}, "bf16": {...}, "speedup": x}, "amx": bool}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from arms import Arm, smoke_settings, train_arm
from machine import cpu_has_amx, results_path, write_results
from train_speed import DEFAULT_DATA, measure_speed, profile_tasks

from genrec import GenRecPipeline
from genrec.data import load_dataset_dir
from genrec.eval.evaluation import evaluate_pipeline
from genrec.layout import TRAIN_CONFIG_FILE
from genrec.tokenizer.build import build_tokenizer
from genrec.trainers import PROFILES

PRECISIONS = {"fp32": {"mode": "rows"}, "bf16": {"mode": "rows", "bf16": True}}


def learning(data_dir: Path, data, precision: str, args) -> dict:
    out = args.run_dir / f"{data_dir.name}-{precision}"
    settings = {"bf16": precision == "bf16", "max_steps": args.steps, "seed": args.seed}
    settings |= smoke_settings(max_users=args.max_users)
    recipe = train_arm(Arm("cpu", args=settings), data_dir, out, resume=args.resume)
    record = json.loads((out / TRAIN_CONFIG_FILE).read_text())
    evals = [e["eval_loss"] for e in record["log_history"] if "eval_loss" in e]
    metrics, _ = evaluate_pipeline(
        GenRecPipeline.from_pretrained(out), data, split="valid", max_users=args.max_users or args.valid_users
    )
    return {
        "trainer_steps_per_s": round(args.steps / record["train_metrics"]["train_runtime"], 3),
        "train_loss": round(record["train_metrics"]["train_loss"], 4),
        "valid_loss": round(evals[-1], 4) if evals else None,
        "valid_ndcg@10": round(metrics["NDCG@10"], 5),
        "valid_hr@10": round(metrics["HR@10"], 5),
        "valid_users": metrics["n_users"],
        "recipe": recipe,
    }


def report(results: dict, args) -> str:
    rows = []
    for name, r in results.items():
        for p in PRECISIONS:
            m = r[p]
            rows.append(
                f"| {name} | {p} | {m['targets_per_s']:,.0f} | {'%.2fx' % r['speedup'] if p == 'bf16' else ''} | "
                f"{m['trainer_steps_per_s']:.2f} | {m['train_loss']} | {m['valid_loss']} | "
                f"{m['valid_ndcg@10']:.4f} | {m['valid_hr@10']:.4f} |"
            )
    return "\n".join(
        [
            "# bf16 autocast against fp32 on the CPU (the `cpu` profile)",
            "",
            f"AMX (native bf16 matmuls) on this CPU: {cpu_has_amx()}. Speed: {args.speed_steps} training "
            "steps of each precision, alternating step by step (targets per second). Learning: one `genrec train "
            f"--profile cpu` run of exactly {args.steps} steps per precision from seed {args.seed} (Trainer's "
            "steps/s of those runs beside: one run after the other, so the machine's drift is in it). Validation: "
            "the loss of the trainer's validation rows, and NDCG@10 / HR@10 of the saved model (ranked in fp32) on "
            "the first validation users; the test split is not ranked.",
            "",
            "| dataset | precision | targets/s (alternating) | speed-up | Trainer steps/s | mean train loss | "
            "valid loss | valid NDCG@10 | valid HR@10 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA)
    p.add_argument("--speed-steps", type=int, default=150, help="measured steps per precision (speed)")
    p.add_argument("--steps", type=int, default=400, help="training steps per precision (learning)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--valid-users", type=int, default=2000, help="validation users ranked (the first N)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/precision"))
    p.add_argument("--resume", action="store_true", help="reuse finished runs of the same recipe in --run-dir")
    p.add_argument("--max-users", type=int, default=None, help="smoke: validate on this many users, write nothing")
    args = p.parse_args()
    batch = PROFILES["cpu"]["args"]["per_device_train_batch_size"]
    results = {}
    for data_dir in args.data:
        data = load_dataset_dir(data_dir)
        tok = build_tokenizer(data)
        r = measure_speed(data, tok, profile_tasks(tok), args.speed_steps, batch, args.seed, arms=PRECISIONS)
        for precision in PRECISIONS:
            r[precision] |= learning(data_dir, data, precision, args)
        r["speedup"] = round(r["bf16"]["targets_per_s"] / r["fp32"]["targets_per_s"], 3)
        results[data_dir.name] = r
        print(json.dumps({k: v for k, v in r.items() if k != "recipe"}, default=str)[:2000], flush=True)
    text = report(results, args)
    print(text)
    write_results(results_path("precision"), text, {**results, "amx": cpu_has_amx()}, smoke=bool(args.max_users))


if __name__ == "__main__":
    main()
