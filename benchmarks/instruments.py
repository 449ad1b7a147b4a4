"""Amazon Instruments (MQL4GRec/MACRec split): genrec, its ablations and two baselines, in one run.

    python benchmarks/instruments.py --profile cpu            # 2-core CPU, about an hour (results below)
    python benchmarks/instruments.py --profile paper --resume # MACRec's settings, for a GPU; resumable

Variants, all on the same split, seed and generator profile:

* ``genrec``: six tasks + implicit alignment loss, fused text/image ranking (MACRec);
* ``tiger``: text IDs only, ``seqrec`` only, no implicit loss (TIGER-style), text ranking;
* ``no_explicit``: ``seqrec`` + ``seqimage`` + implicit loss (no cross-modal tasks), fused;
* ``no_implicit``: six tasks without the implicit loss, fused;
* ``popularity``: most trained-on items first; ``sasrec``: our SASRec (CE loss), best epoch on valid.

Every model ranks the whole catalogue for every test user (20 beams for the generators, MACRec's fusion).
Writes benchmarks/results/instruments-<profile>[-epochs<N>].md (tables, machine, seed, versions) and .json
(``{variant: {HR@1, HR@5, HR@10, NDCG@5, NDCG@10}}``, fused for the multimodal variants). Runs cut short
with --max-steps / --max-users are smoke runs: they print their table and write no result files.
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
import transformers
from machine import describe

import genrec
from genrec.baselines import SASRecConfig, popularity_rank, sasrec_rank, train_sasrec
from genrec.data import load_dataset_dir
from genrec.eval import MAIN_KEYS, catalogue_extras, metrics_table, ranking_metrics
from genrec.eval.evaluation import evaluation_rows
from genrec.pipeline import GenRecPipeline
from genrec.tasks import PAIR_UNIT, build_task_dataset
from genrec.trainers import PROFILES, train_generator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
ALL_TASKS = list(genrec.TASKS)
# variant -> (explicit tasks, implicit loss, ranking reported)
VARIANTS = {
    "genrec": (ALL_TASKS, True, "fused"),
    "tiger": (["seqrec"], False, "text"),
    "no_explicit": (["seqrec", "seqimage"], True, "fused"),
    "no_implicit": (ALL_TASKS, False, "fused"),
}
BASELINES = ("popularity", "sasrec")
# Published on this split (HR@1, HR@5, HR@10, NDCG@5, NDCG@10); see shared/data/.../SOURCE.md.
PUBLISHED = {
    "MACRec paper (own IDs)": (0.0819, 0.1110, 0.1363, 0.0965, 0.1046),
    "MQL4GRec w/o pretraining (MACRec paper)": (0.0763, 0.1058, 0.1291, 0.0902, 0.0997),
    "TIGER (MACRec paper)": (0.0754, 0.1007, 0.1221, 0.0882, 0.0950),
    "SASRec (MACRec paper)": (0.0318, 0.0946, 0.1233, 0.0654, 0.0746),
    "MQL4GRec reproduction, fused (xym0601)": (0.0718, 0.1119, 0.1383, 0.0920, 0.1006),
}
DETAIL_KEYS = ("coverage@10", "long_tail@10", "invalid_id_rate", "cold_start/n_users", "cold_start/HR@10",
               "cold_start/NDCG@10")

logger = logging.getLogger("instruments")


def sequences_per_unit(data, tokenizer, tasks) -> float:
    """Task examples per training unit (a paired seqrec+seqimage unit holds two)."""
    recipes = build_task_dataset(data.splits["train"], tokenizer, tasks).with_format(None)
    paired = recipes.features["unit"].names.index(PAIR_UNIT) if PAIR_UNIT in recipes.features["unit"].names else -1
    return 1 + sum(u == paired for u in recipes["unit"]) / len(recipes)


def run_generator(name: str, data, args, scorer) -> dict:
    """Train (or resume) one variant, rank the test split, return its metrics per ranking."""
    tasks, implicit, _ = VARIANTS[name]
    out = args.run_dir / name
    done = out / "benchmark_metrics.json"
    if args.resume and done.is_file():
        logger.info("%s: already finished, reading %s", name, done)
        return json.loads(done.read_text())
    overrides = {"max_steps": args.max_steps} if args.max_steps else {}
    if args.epochs:
        overrides["num_train_epochs"] = args.epochs
    if args.max_steps:
        overrides["eval_strategy"] = overrides["save_strategy"] = "no"
        overrides["load_best_model_at_end"] = False
    train_generator(args.data, out, profile=args.profile, tasks=tasks, implicit=implicit, seed=args.seed,
                    resume=args.resume and any((args.run_dir / f"{name}.checkpoints").glob("checkpoint-*")),
                    **overrides)
    pipe = GenRecPipeline.from_pretrained(out, device=args.device)
    record = pipe.train_config
    ranking = VARIANTS[name][2]
    test = evaluation_rows(data, "test", args.max_users)
    start = time.perf_counter()
    res = pipe.rank(test["history"], ranking, k=10, num_beams=args.num_beams, batch_size=args.eval_batch_size,
                    progress=True)
    decode_s = time.perf_counter() - start
    result = {ranking: scorer(res.rows, test["target"], res)}
    for m, (rows, _) in res.per_modality.items():
        if m not in result:
            result[m] = scorer([r[:10] for r in rows], test["target"], res, modality=m)
    train_s = record["train_metrics"]["train_runtime"]
    units_per_s = record["train_metrics"]["train_samples_per_second"]
    result["timing"] = {
        "train_s": round(train_s, 1),
        "epochs": round(record["log_history"][-1]["epoch"], 2),
        "train_sequences_per_s": round(units_per_s * sequences_per_unit(data, pipe.tokenizer, tasks), 1),
        "rank_s": round(decode_s, 1),
        "users_per_s": round(len(test) / decode_s, 1),
    }
    if not (args.max_steps or args.max_users):
        done.write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=["cpu", "paper"], default="cpu")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default=",".join([*VARIANTS, *BASELINES]), help="comma-separated subset")
    p.add_argument("--run-dir", type=Path, default=None, help="models and checkpoints (default runs/instruments-<profile>)")
    p.add_argument("--resume", action="store_true", help="reuse finished variants, resume unfinished ones")
    p.add_argument("--num-beams", type=int, default=20, help="MACRec / MQL4GRec: 20")
    p.add_argument("--eval-batch-size", type=int, default=64, help="ranking requests per forward")
    p.add_argument("--epochs", type=float, help="override the profile's generator epochs (results get an -epochs<N> suffix)")
    p.add_argument("--max-steps", type=int, help="smoke run: train each generator this many steps")
    p.add_argument("--max-users", type=int, help="smoke run: rank only the first N test users")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.name = f"instruments-{args.profile}" + (f"-epochs{args.epochs:g}" if args.epochs else "")
    args.run_dir = args.run_dir or REPO / "runs" / args.name
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS) - set(BASELINES))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {[*VARIANTS, *BASELINES]}")

    data = load_dataset_dir(args.data)  # histories: last 20 items (MACRec)
    extras = catalogue_extras(data)

    def scorer(rows, targets, res=None, modality=None):
        gen = {}
        if res is not None:
            mods = [modality] if modality else list(res.beams)
            gen = dict(invalid=sum(res.invalid[m] for m in mods), generated=sum(res.beams[m] for m in mods))
        return ranking_metrics(rows, targets, **extras, **gen)

    results, started = {}, time.time()
    for name in variants:
        t0 = time.perf_counter()
        logger.info("=== %s", name)
        if name in VARIANTS:
            results[name] = run_generator(name, data, args, scorer)
        elif name == "popularity":
            test = data.splits["test"]
            results[name] = {"ranking": scorer(popularity_rank(data, "test"), test["target"])}
        else:  # sasrec: its own history length (50, the paper's), same split and targets
            sdata = load_dataset_dir(args.data, max_history=SASRecConfig.max_len)
            model, log = train_sasrec(sdata, SASRecConfig(seed=args.seed, device=args.device))
            ranked = sasrec_rank(model, sdata, "test")
            results[name] = {"ranking": scorer(ranked, sdata.splits["test"]["target"]),
                             "timing": {"epochs": len(log), "train_s": round(time.perf_counter() - t0, 1)}}
        results[name].setdefault("timing", {})["wall_s"] = round(time.perf_counter() - t0, 1)
        logger.info("%s: %s", name, json.dumps(results[name].get("fused") or next(iter(results[name].values()))))
    write_report(results, args, data, time.time() - started)


def headline(result: dict) -> dict:
    """The ranking a variant is judged by: fused when there is one, else its only one."""
    return result.get("fused") or result.get("text") or result["ranking"]


def write_report(results: dict, args, data, total_s: float) -> None:
    rows = {}
    for name, res in results.items():
        for ranking in ("fused", "text", "image", "ranking"):
            if ranking in res:
                rows[name if ranking == "ranking" else f"{name} / {ranking}"] = res[ranking]
    main_table = metrics_table(rows, list(MAIN_KEYS) + ["n_users"])
    detail_table = metrics_table(rows, [k for k in DETAIL_KEYS if any(k in r for r in rows.values())])
    timing = ["| variant | train s | epochs | train sequences/s | rank s | users/s | wall s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, res in results.items():
        t = res.get("timing", {})
        timing.append("| " + " | ".join([name] + [str(t.get(k, "")) for k in (
            "train_s", "epochs", "train_sequences_per_s", "rank_s", "users_per_s", "wall_s")]) + " |")
    published = ["| published | " + " | ".join(MAIN_KEYS) + " |", "|---|" + "---:|" * len(MAIN_KEYS)]
    published += [f"| {k} | " + " | ".join(f"{x:.4f}" for x in v) + " |" for k, v in PUBLISHED.items()]
    print(main_table, detail_table, "\n".join(timing), sep="\n\n")
    if args.max_steps or args.max_users:
        print("smoke run (--max-steps/--max-users): no result files written")
        return
    profile = PROFILES[args.profile]
    command = f"python benchmarks/instruments.py --profile {args.profile} --seed {args.seed}"
    if args.epochs:
        command += f" --epochs {args.epochs:g}"
    if args.variants != ",".join([*VARIANTS, *BASELINES]):
        command += f" --variants {args.variants}"
    text = "\n".join([
        f"# Amazon Instruments, profile `{args.profile}`" + (f", {args.epochs:g} epochs" if args.epochs else ""), "",
        f"Command: `{command}` ({total_s / 60:.0f} min in all).", "",
        f"Machine: {describe(args.device)}; transformers {transformers.__version__}, genrec {genrec.__version__}. "
        f"Seed {args.seed}.", "",
        f"Data: `{args.data.name}`, {data.n_items} items, {len(data.splits['test'])} test users, "
        f"{len(data.splits['train'])} train rows, the semantic IDs MQL4GRec released (4 x 256 per modality). "
        "Test split, leave-one-out, whole catalogue ranked, history <= 20 items (SASRec: 50), no user dropped, "
        f"history items not excluded. Generators: constrained beam search, {args.num_beams} beams per modality, "
        "MACRec fusion (mean score, +1 when in both lists).", "",
        f"Generator profile `{args.profile}`: model {json.dumps(profile['model'])} over MACRec's defaults "
        "(d_model 128, 6 heads, dropout 0.1); training " + json.dumps(profile["args"])
        + (f", epochs overridden to {args.epochs:g}" if args.epochs else "") + ".", "",
        "## Test metrics", "", main_table, "",
        "Headline (in the .json): fused for genrec / no_explicit / no_implicit, text for tiger.", "",
        "## Extras", "",
        "coverage@10 = distinct items in all top-10 lists / catalogue; long_tail@10 = share of top-10 slots "
        "outside the 20% most trained-on items; cold_start = the users whose test target never occurs in a "
        "training sequence.", "", detail_table, "",
        "## Cost", "", *timing, "",
        "## Published on this split", "", *published, "",
    ])
    out = REPO / "benchmarks" / "results" / args.name
    for suffix, content in ((".md", text),
                            (".json", json.dumps({n: {k: headline(r)[k] for k in MAIN_KEYS} for n, r in results.items()},
                                                 indent=1))):
        tmp = out.with_name(f".{out.name}{suffix}.tmp{os.getpid()}")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(out.with_suffix(suffix))
    print(f"wrote {out}.md and .json")


if __name__ == "__main__":
    sys.exit(main())
