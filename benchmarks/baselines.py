"""Reference baselines on a dataset dir: most-popular and SASRec, scored by genrec.eval on the test split.

    python benchmarks/baselines.py [--data DIR] [--seed 0] [--dropouts 0.5] [--threads N]

Prints HR@1/5/10 and NDCG@5/10 (plus coverage, long-tail share and cold-start figures) and writes
benchmarks/results/baselines-<dataset>.md with the machine, seed and library versions. With several
--dropouts, one SASRec is trained per value and the one with the best validation NDCG@10 is the headline.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import evaluate
import torch
from machine import describe, results_path, write_atomic

from genrec.baselines import PopularityRecommender, SASRecConfig, SASRecRecommender
from genrec.data import load_dataset_dir
from genrec.eval import MAIN_KEYS, metrics_table
from genrec.eval.evaluation import evaluate_ranker

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
# MACRec paper (arXiv 2511.15122), Table 2, Instruments, SASRec row; same split and protocol.
PAPER_SASREC = {"HR@1": 0.0318, "HR@5": 0.0946, "HR@10": 0.1233, "NDCG@5": 0.0654, "NDCG@10": 0.0746}
EXTRA_KEYS = ("coverage@10", "long_tail@10", "cold_start/n_users", "cold_start/HR@10", "cold_start/NDCG@10")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dropouts",
        default=str(SASRecConfig.dropout),
        help="comma-separated SASRec dropout rates; the best on validation NDCG@10 is reported",
    )
    p.add_argument("--max-epochs", type=int, default=SASRecConfig.max_epochs)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; use 1 on a machine shared with other jobs)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--out", type=Path, default=None, help="result file (default: benchmarks/results/baselines-<dataset>.md)"
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    config = SASRecConfig(seed=args.seed, max_epochs=args.max_epochs, device=args.device)
    data = load_dataset_dir(args.data, max_history=config.max_len)
    test = data.splits["test"]

    def score(ranker, exclude_history=False):
        return evaluate_ranker(ranker, data, "test", exclude_history=exclude_history)[0]

    results, notes = {}, []
    popularity = PopularityRecommender().fit(data)
    for exclude in (False, True):
        tag = " (history excluded)" if exclude else ""
        results[f"popularity{tag}"] = score(popularity, exclude)

    runs = []
    for dropout in (float(x) for x in args.dropouts.split(",")):
        cfg = SASRecConfig(**{**config.__dict__, "dropout": dropout})
        t0 = time.perf_counter()
        sasrec = SASRecRecommender(cfg).fit(data)
        seconds, log = time.perf_counter() - t0, sasrec.log
        best = max(log, key=lambda r: r["valid_NDCG@10"])
        runs.append((best["valid_NDCG@10"], dropout, sasrec))
        notes.append(
            f"- SASRec dropout {dropout}: best validation NDCG@10 {best['valid_NDCG@10']:.4f} at epoch "
            f"{best['epoch']} of {len(log)} (early stopping, patience {cfg.patience}), {seconds:.0f} s"
        )
        if len(args.dropouts.split(",")) > 1:
            results[f"SASRec dropout {dropout}"] = score(sasrec)
    _, dropout, sasrec = max(runs, key=lambda r: r[0])
    results[f"SASRec (dropout {dropout}, best on valid)"] = score(sasrec)
    results[f"SASRec (dropout {dropout}, history excluded)"] = score(sasrec, exclude_history=True)
    results["SASRec, MACRec paper Table 2"] = dict(PAPER_SASREC)

    main_table = metrics_table(results, list(MAIN_KEYS) + ["n_users"])
    extra_table = metrics_table({k: v for k, v in results.items() if "paper" not in k}, list(EXTRA_KEYS))
    print(main_table, "", extra_table, "", *notes, sep="\n")

    name = args.data.resolve().name
    out = args.out or results_path(f"baselines-{name}.md")
    machine = f"{describe(args.device)}, evaluate {evaluate.__version__}"
    text = "\n".join(
        [
            f"# Baselines on `{name}`",
            "",
            f"Command: `python benchmarks/baselines.py --data {args.data} --seed {args.seed} --dropouts {args.dropouts}"
            + (f" --threads {args.threads}" if args.threads else "")
            + "`",
            "",
            f"Machine: {machine}. Seed {args.seed}.",
            "",
            f"Data: {data.n_items} items, {len(test)} test users, {len(data.splits['train'])} train rows; history "
            f"<= {config.max_len} items (SASRec max_len). Test split, whole catalogue ranked, one target per user, "
            "no user dropped; metrics by `genrec.eval.ranking_metrics` (the `hit_rate` / `ndcg` evaluate modules).",
            "",
            main_table,
            "",
            "Extras: coverage@10 = distinct items in all top-10 lists / catalogue; long_tail@10 = share of top-10 "
            "slots holding an item outside the 20% most popular by training interactions; cold_start = users whose "
            "test target never occurs in a training sequence.",
            "",
            extra_table,
            "",
            "SASRec config: " + ", ".join(f"{k}={v}" for k, v in config.__dict__.items() if k != "dropout") + ".",
            "",
            *notes,
            "",
        ]
    )
    write_atomic(out, text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
