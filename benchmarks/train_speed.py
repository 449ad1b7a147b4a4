"""Training efficiency of the generator: per-row training against one-pass sequence training (issue 32).

Two figures per dataset, both modes on the same machine in one run:

1. Next-item targets learned per second: the ``cpu`` profile's model and tasks (those the dataset's IDs
   allow), forward + loss + backward + AdamW step, with collation of lazily read units included. Each
   mode draws its batches as training does (length buckets; a sequence-mode batch holds about the
   profile's 256 targets, ``TargetBatchSampler``); the two modes alternate step by step, so that load from elsewhere
   hits both alike, and the rate is all targets over all seconds (a median of per-step rates would
   overweight the short-history batches).
2. Quality per epoch: ``genrec train --profile cpu`` for ``--epochs`` epochs in each mode, then
   NDCG@10 / HR@10 on every validation user (ranked the way ``genrec evaluate`` ranks).

    python benchmarks/train_speed.py [--data DIR ...] [--steps 60] [--epochs 3] [--run-dir DIR] [--resume]
    python benchmarks/train_speed.py --data DIR --minutes 20     # 3. instead: quality at an equal budget

Writes benchmarks/results/train-efficiency.{md,json}:
``{"<dataset>": {"rows": {"targets_per_s", "valid_ndcg@10", ...}, "sequences": {...}}, ...}``.

3. With ``--minutes M``, instead: each mode trained M minutes on the clock (a budget run: schedule planned for
   the budget, validation ranking of the trainer's fixed sample of validation users every tenth of it, the best
   checkpoint kept), one mode after the other; the validation curves and best points go to
   ``train-efficiency-budget<M>.{md,json}``. This is the comparison a wall-clock budget makes: one pass per
   sequence buys more epochs per minute, at a lower quality per epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from arms import Arm, smoke_settings, train_arm
from machine import describe, git_commit, provenance, results_path, write_results

from genrec import SEQUENTIAL_TASK
from genrec.data import load_dataset_dir
from genrec.generation.constraints import IDConstraint, uses_prefix_softmax
from genrec.modeling.factory import build_generator
from genrec.sequence_tasks import build_sequence_dataset
from genrec.tasks import build_task_dataset
from genrec.tokenizer.build import build_tokenizer
from genrec.trainers import PROFILES
from genrec.trainers.generator_trainer import GenRecCollator
from genrec.trainers.id_loss import packed_id_loss, prefix_softmax_loss
from genrec.trainers.sampling import LengthBucketSampler, TargetBatchSampler

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = [SHARED / "amazon-instruments-mql4grec", SHARED / "amazon-instruments-lcrec"]
MODES = ("rows", "sequences")
logger = logging.getLogger("train_speed")


def profile_tasks(tok) -> list[str]:
    """The cpu profile's tasks that the tokenizer's modalities allow (a text-only dataset: seqrec)."""
    return [
        t
        for t in PROFILES["cpu"]["args"]["tasks"]
        if t in SEQUENTIAL_TASK.values()
        and {m for m, task in SEQUENTIAL_TASK.items() if task == t} <= set(tok.modalities)
    ]


class ModeStepper:
    """One mode's model, batches and optimizer; ``step()`` trains one batch and returns (targets, seconds).
    ``bf16``: forward and loss under bf16 autocast, as Trainer runs them with ``bf16=True``."""

    def __init__(self, mode: str, data, tok, tasks: list[str], batch_targets: int, seed: int, bf16: bool = False):
        model_cfg = dict(PROFILES["cpu"]["model"])
        if mode == "sequences":
            model_cfg["history_attention"] = "causal"
            units = build_sequence_dataset([s[:-2] for s in data.sequences.values()], tok, tasks, 20)
        else:
            units = build_task_dataset(data.splits["train"], tok, tasks)
        self.mode, self.units, self.bf16 = mode, units, bf16
        self.model = build_generator(tok, seed=seed, **model_cfg).train()
        prefix = uses_prefix_softmax(self.model.config)
        self.constraint = IDConstraint.from_tokenizer(tok, tok.modalities) if prefix else None
        self.collate = GenRecCollator(tok, score_eos=not prefix)
        gen, recipes = torch.Generator().manual_seed(seed), units.with_format(None)
        if mode == "sequences":  # as training draws them: batches of ~batch_targets targets
            self.batches = list(TargetBatchSampler(recipes["length"], recipes["targets"], batch_targets, generator=gen))
        else:
            order = list(LengthBucketSampler(recipes["length"], batch_targets, generator=gen))
            self.batches = [order[i : i + batch_targets] for i in range(0, len(order), batch_targets)]
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=PROFILES["cpu"]["args"]["learning_rate"])
        self.done = 0

    def step(self) -> tuple[int, float]:
        start = time.perf_counter()
        idx = self.batches[self.done % len(self.batches)]
        self.done += 1
        batch = self.collate(self.units.__getitems__(idx))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss, targets = self._loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)  # as Trainer does
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return targets, time.perf_counter() - start

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        out = self.model(**batch)
        if self.mode == "sequences":
            loss = packed_id_loss(
                out.target_states, batch["labels"], self.model.get_output_embeddings(), self.constraint
            )
            targets = int(batch["decoder_segment_ids"].max(1).values.sum())
        else:
            loss = (
                out.lm_loss
                if self.constraint is None
                else prefix_softmax_loss(out.logits, batch["labels"], self.constraint)
            )
            targets = batch["input_ids"].shape[0]
        if out.implicit_loss is not None:
            loss = loss + self.model.config.implicit_weight * out.implicit_loss
        return loss, targets


def measure_speed(data, tok, tasks, steps: int, batch_targets: int, seed: int, arms: dict | None = None) -> dict:
    """Targets per second of each arm (name -> ``ModeStepper`` keywords; default: the two modes), the arms
    alternating step by step so that the machine's drift and load from elsewhere hit all alike."""
    arms = arms or {m: {"mode": m} for m in MODES}
    steppers = {
        name: ModeStepper(data=data, tok=tok, tasks=tasks, batch_targets=batch_targets, seed=seed, **kw)
        for name, kw in arms.items()
    }
    totals = {name: [0, 0.0] for name in arms}
    for n in range(steps + 1):  # the first step of each mode is warm-up
        for m, stepper in steppers.items():
            targets, seconds = stepper.step()
            if n:
                totals[m][0] += targets
                totals[m][1] += seconds
    return {
        m: {
            "targets_per_s": round(t / s, 1),
            "measured_targets": t,
            "train_units": len(steppers[m].units),
            "batches_per_epoch": len(steppers[m].batches),
        }
        for m, (t, s) in totals.items()
    }


def train_and_validate(data_dir: Path, data, tasks: list[str], mode: str, args) -> dict:
    """Train ``args.epochs`` epochs with the cpu profile in ``mode``; NDCG@10 / HR@10 on every validation user
    (the first ``args.max_users`` in a smoke run)."""
    epochs, run_dir, resume, seed = args.epochs, args.run_dir, args.resume, args.seed
    from genrec import GenRecPipeline
    from genrec.eval.evaluation import evaluate_pipeline
    from genrec.trainers.generator_trainer import ranked_modality

    cache = run_dir / f"{data_dir.name}-{mode}.json"
    if resume and cache.is_file():
        return json.loads(cache.read_text())
    out = run_dir / f"{data_dir.name}-{mode}"
    recipe = train_arm(
        Arm("cpu", args={"training_mode": mode, "num_train_epochs": epochs, "tasks": tasks, "seed": seed}),
        data_dir,
        out,
    )
    record = json.loads((out / "genrec_train_config.json").read_text())
    pipe = GenRecPipeline.from_pretrained(out)
    metrics, _ = evaluate_pipeline(pipe, data, split="valid", max_users=args.max_users, modality=ranked_modality(tasks))
    result = {
        "valid_ndcg@10": round(metrics["NDCG@10"], 5),
        "valid_hr@10": round(metrics["HR@10"], 5),
        "valid_users": metrics["n_users"],
        "epochs": epochs,
        "train_minutes": record["train_minutes"],
        "steps": record["log_history"][-1].get("step"),
        "recipe": recipe,
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result))
    return result


def train_to_budget(data_dir: Path, tasks: list[str], mode: str, args) -> dict:
    """``args.minutes`` of training on the clock in ``mode``: the budget run's validation curve and best point."""
    from genrec.layout import TRAIN_CONFIG_FILE
    from genrec.trainers.budget import learning_curve

    out = args.run_dir / f"{data_dir.name}-{mode}-budget{args.minutes:g}"
    settings = {"training_mode": mode, "max_train_minutes": args.minutes, "tasks": tasks, "seed": args.seed}
    settings |= smoke_settings(max_users=args.max_users)
    recipe = train_arm(Arm("cpu", args=settings), data_dir, out, resume=args.resume)
    record = json.loads((out / TRAIN_CONFIG_FILE).read_text())
    curve = learning_curve(record["log_history"])
    best = max(curve, key=lambda c: c["valid_ndcg@10"])
    return {
        "best_valid_ndcg@10": best["valid_ndcg@10"],
        "at_minute": best["minutes"],
        "epochs": round(record["log_history"][-1]["epoch"], 2),
        "curve": curve,
        "recipe": recipe,
    }


def budget_report(results: dict, args) -> str:
    rows = [
        f"| {name} | {m} | {r[m]['best_valid_ndcg@10']:.4f} | {r[m]['at_minute']:.1f} | {r[m]['epochs']} | "
        + ", ".join(f"({c['minutes']:.1f}, {c['valid_ndcg@10']:.4f})" for c in r[m]["curve"])
        + " |"
        for name, r in results.items()
        for m in MODES
    ]
    return "\n".join(
        [
            f"# Training modes at an equal {args.minutes:g}-minute budget (validation)",
            "",
            f"Machine: {describe('cpu')}. The `cpu` profile with the tasks each dataset's IDs allow, seed {args.seed}, "
            f"each mode trained {args.minutes:g} minutes on the clock, one after the other on an otherwise idle "
            "machine; validation NDCG@10 of the trainer's fixed sample of validation users (up to 2,000, fused or "
            "the one modality, 20 beams) every tenth of the budget. One seed: differences under ~6% are not "
            "resolved. The test split is not ranked.",
            "",
            "| dataset | mode | best valid NDCG@10 | at minute | epochs | curve (minutes, NDCG@10) |",
            "|---|---|---:|---:|---:|---|",
            *rows,
            "",
        ]
    )


def report(results: dict, args, command: str) -> str:
    lines = []
    for name, r in results.items():
        for m in MODES:
            x = r[m]
            lines.append(
                f"| {name} | {m} | {x['targets_per_s']:.0f} | {x['batches_per_epoch']} | "
                f"{x.get('valid_ndcg@10', float('nan')):.4f} | {x.get('valid_hr@10', float('nan')):.4f} | "
                f"{x.get('train_minutes', float('nan'))} |"
            )
        lines.append(
            f"| {name} | **sequences / rows** | **{r['speedup']:.2f}x** | | "
            f"**{r.get('ndcg_ratio', float('nan')):.3f}** | | |"
        )
    return f"""# Training efficiency: per-row training vs one-pass sequence training

Command: `{command}` (commit {git_commit()})
Machine: {describe("cpu")}. Load average at the end: {" ".join(Path("/proc/loadavg").read_text().split()[:3])}.
Model and tasks: the `cpu` profile (2+2 layers, d_model 128, prefix softmax, implicit loss) with the profile's
tasks that each dataset's IDs allow; {args.steps} alternating steps per mode for the speed; {args.epochs:g} epochs of
`genrec train --profile cpu --training-mode MODE` for validation NDCG@10 / HR@10 (every validation user, seed
{args.seed}, one seed).

| dataset | mode | targets/s | batches/epoch | valid NDCG@10 | valid HR@10 | train minutes |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

targets/s: next-item targets learned per second of collation + forward + backward + clipping + AdamW step.
The sequence mode reads each window of a user's sequence once under causal history attention and learns all
its targets in that pass; its loss computes only the code columns of each level (genrec.trainers.id_loss).
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=60, help="measured steps per mode (speed)")
    p.add_argument("--batch-targets", type=int, default=PROFILES["cpu"]["args"]["per_device_train_batch_size"])
    p.add_argument("--epochs", type=float, default=3, help="epochs per mode for validation quality (0: speed only)")
    p.add_argument("--run-dir", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "train-speed")
    p.add_argument("--resume", action="store_true", help="reuse trained modes cached in --run-dir")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-users", type=int, help="smoke run: validate on this many users")
    p.add_argument("--minutes", type=float, help="instead: each mode trained this many minutes (quality at a budget)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="result files without suffix (default: benchmarks/results/train-efficiency)",
    )
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = {}
    if a.minutes:
        for data_dir in a.data:
            tasks = profile_tasks(build_tokenizer(load_dataset_dir(data_dir)))
            results[data_dir.name] = {m: train_to_budget(data_dir, tasks, m, a) for m in MODES}
        out = a.out or results_path(f"train-efficiency-budget{a.minutes:g}")
        write_results(out, budget_report(results, a), results, smoke=bool(a.max_users))
        return
    for data_dir in a.data:
        data = load_dataset_dir(data_dir)
        tok = build_tokenizer(data)
        tasks = profile_tasks(tok)
        r = measure_speed(data, tok, tasks, a.steps, a.batch_targets, a.seed)
        r["speedup"] = round(r["sequences"]["targets_per_s"] / r["rows"]["targets_per_s"], 3)
        print(f"{data_dir.name}: {r}", flush=True)
        if a.epochs:
            for m in MODES:
                r[m].update(train_and_validate(data_dir, data, tasks, m, a))
            rows_ndcg = r["rows"]["valid_ndcg@10"]  # zero only in a smoke run's few users
            r["ndcg_ratio"] = round(r["sequences"]["valid_ndcg@10"] / rows_ndcg, 4) if rows_ndcg else float("nan")
        results[data_dir.name] = r
    write_results(
        a.out or results_path("train-efficiency"),
        report(results, a, provenance()["command"]),
        results,
        smoke=bool(a.max_users),
    )


if __name__ == "__main__":
    main()
