"""Training throughput of the generator with and without the implicit alignment loss, in one run.

The real model of a training profile (cpu: 2+2 layers; paper: MACRec's 4+4), lazy task dataset,
GenRecCollator and AdamW; batches drawn as training draws them (length buckets, genrec's
``batching="length_buckets"``, or random). The same batches serve both settings,
and the setting alternates every step (on, off, on, off, ...) so that load from other processes
hits both alike; per-step times are summarised by their median.
Throughput = sequences (task examples; a paired unit counts 2) per second of forward+backward+step.
Goal (issue 5): implicit-loss overhead <= 10%.

    python benchmarks/implicit_speed.py [--data DIR] [--profile cpu|paper] [--batching length|random]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from machine import describe, results_path, write_atomic

from genrec.data import load_dataset_dir
from genrec.modeling import GenRecT5Config
from genrec.modeling.factory import build_generator
from genrec.tasks import build_task_dataset
from genrec.tokenizer.build import build_tokenizer
from genrec.trainers import PROFILES
from genrec.trainers.generator_trainer import GenRecCollator
from genrec.trainers.sampling import LengthBucketSampler

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-instruments-mql4grec"
WEIGHT = 0.01  # MACRec's implicit-loss weight


def measure(data, tok, steps: int, batch_size: int, seed: int, profile: str, batching: str) -> dict[bool, list[float]]:
    """Sequences/s per step for implicit on/off, alternating on the same batches."""
    torch.manual_seed(seed)
    ds = build_task_dataset(data.splits["train"], tok)
    gen = torch.Generator().manual_seed(seed)
    if batching == "length":
        order = list(LengthBucketSampler(ds.with_format(None)["length"], batch_size, generator=gen))
    else:
        order = torch.randperm(len(ds), generator=gen).tolist()
    collate = GenRecCollator(tok)
    model = build_generator(tok, seed=seed, **PROFILES[profile]["model"]).train()
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
    p.add_argument("--batch-size", type=int, default=256, help="units per step (cpu profile: 256)")
    p.add_argument("--profile", choices=["cpu", "paper"], default="cpu", help="model size of this training profile")
    p.add_argument(
        "--batching",
        choices=["length", "random"],
        default="length",
        help="length-grouped batches (training's default) or random ones",
    )
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    data = load_dataset_dir(a.data)
    tok = build_tokenizer(data)
    rates = measure(data, tok, a.steps, a.batch_size, a.seed, a.profile, a.batching)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    overhead = (off / on - 1) * 100
    print(
        f"implicit on : {on:.1f} sequences/s\nimplicit off: {off:.1f} sequences/s\noverhead: {overhead:+.1f}% (goal <= 10%)"
    )

    rows = "\n".join(
        f"| {'on' if k else 'off'} | {statistics.median(rates[k]):.1f} | {min(rates[k]):.1f} | {max(rates[k]):.1f} |"
        for k in (True, False)
    )
    c = GenRecT5Config(**PROFILES[a.profile]["model"])
    layers = f"{c.num_layers}+{c.num_decoder_layers} layers, d_model {c.d_model}, d_kv {c.d_kv}, d_ff {c.d_ff}"
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    report = results_path(f"train_speed-{a.profile}-{a.batching}.md")
    write_atomic(
        report,
        f"""# Generator training speed: implicit alignment loss on vs off

Command: `python benchmarks/implicit_speed.py --steps {a.steps} --batch-size {a.batch_size} --profile {a.profile} --batching {a.batching}`
Data: {a.data.name} ({len(data.splits["train"])} train rows), all six tasks, seqrec+seqimage paired,
{a.profile}-profile model ({layers}), {a.batching} batches of {a.batch_size} units/step,
{a.steps} steps per setting (alternating), seed {a.seed}. Load average at the end: {" ".join(load)}.
Machine: {describe("cuda" if torch.cuda.is_available() else "cpu")}.

| implicit loss | median sequences/s | min | max |
|---|---|---|---|
{rows}

Overhead of the implicit loss (median vs median): **{overhead:+.1f}%** (goal <= 10%).
The encoder runs once per batch; the loss adds a masked mean-pool and a [pairs x pairs] similarity matrix.
""",
    )
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
