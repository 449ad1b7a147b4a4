"""Training throughput of the generator with and without the implicit alignment loss, in one run.

The real model (MACRec size), lazy task dataset, GenRecCollator and AdamW; the same batches for both
settings, and the setting alternates every step (on, off, on, off, ...) so that load from other
processes on a shared machine hits both alike; per-step times are summarised by their median.
Throughput = sequences (task examples; a paired unit counts 2) per second of forward+backward+step.
Goal (issue 5): implicit-loss overhead <= 10%.

    python benchmarks/train_speed.py [--data DIR] [--steps 20] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from machine import describe

from genrec.data import load_dataset_dir
from genrec.tasks import build_task_dataset
from genrec.tokenizer.build import build_tokenizer
from genrec.trainers.generator_trainer import GenRecCollator, build_generator

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-instruments-mql4grec"
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.md"
WEIGHT = 0.01  # MACRec's implicit-loss weight


def measure(data, tok, steps: int, batch_size: int, seed: int) -> dict[bool, list[float]]:
    """Sequences/s per step for implicit on/off, alternating on the same shuffled batches."""
    torch.manual_seed(seed)
    ds = build_task_dataset(data.splits["train"], tok)
    order = torch.randperm(len(ds)).tolist()
    collate = GenRecCollator(tok)
    model = build_generator(tok, seed=seed).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for step in range(2 * steps + 2):  # the first pair is warm-up
        units = ds.__getitems__(order[(step // 2) * batch_size : (step // 2 + 1) * batch_size])
        batch = collate(units)
        implicit = step % 2 == 0
        model.config.implicit_weight = WEIGHT if implicit else 0.0
        start = time.perf_counter()
        out = model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= 2:
            rates[implicit].append(batch["input_ids"].shape[0] / (time.perf_counter() - start))
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256, help="units per step (cpu profile)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    data = load_dataset_dir(a.data)
    tok = build_tokenizer(data)
    rates = measure(data, tok, a.steps, a.batch_size, a.seed)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    overhead = (off / on - 1) * 100
    print(f"implicit on : {on:.1f} sequences/s\nimplicit off: {off:.1f} sequences/s\noverhead: {overhead:+.1f}% (goal <= 10%)")

    rows = "\n".join(
        f"| {'on' if k else 'off'} | {statistics.median(rates[k]):.1f} | {min(rates[k]):.1f} | {max(rates[k]):.1f} |"
        for k in (True, False)
    )
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"""# Generator training speed: implicit alignment loss on vs off

Command: `python benchmarks/train_speed.py --steps {a.steps} --batch-size {a.batch_size}`
Data: {a.data.name} ({len(data.splits['train'])} train rows), all six tasks, seqrec+seqimage paired,
MACRec model (4+4 layers, d_model 128), batch {a.batch_size} units/step, {a.steps} steps per setting
(alternating), seed {a.seed}. Load average at the end: {" ".join(load)} (other jobs shared the machine).
Machine: {describe("cuda" if torch.cuda.is_available() else "cpu")}.

| implicit loss | median sequences/s | min | max |
|---|---|---|---|
{rows}

Overhead of the implicit loss (median vs median): **{overhead:+.1f}%** (goal <= 10%).
The encoder runs once per batch; the loss adds a masked mean-pool and a [pairs x pairs] similarity matrix.
""")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
