"""Amazon Instruments (MQL4GRec/MACRec split): genrec, its ablations and two baselines, in one run.

    python benchmarks/instruments.py --profile cpu            # 2-core CPU, about an hour (results below)
    python benchmarks/instruments.py --profile paper --resume # MACRec's settings, for a GPU; resumable
    python benchmarks/instruments.py --max-train-minutes 60 --variants genrec,tiger,sasrec,popularity  # issue 14

Variants, all on the same split, seed and generator profile:

* ``genrec``: the profile as shipped (``cpu``: ``seqrec`` + ``seqimage`` + implicit loss), fused ranking;
* ``tiger``: text IDs only, ``seqrec`` only, no implicit loss (TIGER-style), text ranking;
* ``all_tasks``: MACRec's six tasks + implicit alignment loss, fused;
* ``no_implicit``: the profile's tasks without the implicit loss, fused;
* ``popularity``: most trained-on items first; ``sasrec``: our SASRec (CE loss), best epoch on valid.

Every model ranks the whole catalogue for every test user (20 beams for the generators, MACRec's fusion),
once as the papers do (history items may be recommended) and once with history items excluded.
Writes benchmarks/results/instruments-<profile>[-epochs<N>].md, or instruments-budget.md with
--max-train-minutes (tables, learning curves, machine, seed, versions), and .json
(``{"test": {variant: {ndcg@10, hr@10, coverage@10, train_minutes, ..., "history_excluded": {...}}}}``,
fused for the multimodal variants). Each invocation merges the variants finished in its run folder, so
variants may be run one at a time. Runs cut short with --max-steps / --max-users are smoke runs: they
print their table and write no result files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
import transformers
from machine import describe, git_commit, write_results

import genrec
from genrec.baselines import PopularityRecommender, SASRecConfig, SASRecRecommender
from genrec.data import load_dataset_dir
from genrec.eval import MAIN_KEYS, catalogue_extras, metrics_table, ranking_metrics
from genrec.eval.evaluation import evaluate_ranker, evaluation_rows
from genrec.pipeline import GenRecPipeline
from genrec.tasks import PAIR_UNIT, build_task_dataset
from genrec.trainers import PROFILES, train_generator
from genrec.trainers.budget import learning_curve

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
ALL_TASKS = list(genrec.TASKS)
# variant -> (explicit tasks, implicit loss, ranking reported)
# variant -> (tasks, implicit loss, ranking); tasks None = the profile's (cpu: seqrec + seqimage, issue 14)
VARIANTS = {
    "genrec": (None, True, "fused"),  # the profile as shipped
    "tiger": (["seqrec"], False, "text"),
    "all_tasks": (ALL_TASKS, True, "fused"),  # MACRec's six tasks
    "no_implicit": (None, False, "fused"),  # the profile without the implicit alignment loss
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
DETAIL_KEYS = (
    "coverage@10",
    "gini@10",
    "novelty@10",
    "popularity_percentile@10",
    "diversity@10",
    "long_tail@10",
    "invalid_id_rate",
    "cold_start/n_users",
    "cold_start/HR@10",
    "cold_start/NDCG@10",
)

logger = logging.getLogger("instruments")


def sequences_per_unit(data, tokenizer, tasks) -> float:
    """Task examples per training unit (a paired seqrec+seqimage unit holds two)."""
    recipes = build_task_dataset(data.splits["train"], tokenizer, tasks).with_format(None)
    paired = recipes.features["unit"].names.index(PAIR_UNIT) if PAIR_UNIT in recipes.features["unit"].names else -1
    return 1 + sum(u == paired for u in recipes["unit"]) / len(recipes)


def make_scorer(data):
    """``scorer(rows, targets, res=None, modality=None)``: ranking metrics with the catalogue extras and,
    for a generator's ``RankingResult``, its invalid-ID rate."""
    extras = catalogue_extras(data)

    def scorer(rows, targets, res=None, modality=None):
        gen = {}
        if res is not None:
            mods = [modality] if modality else list(res.beams)
            gen = dict(invalid=sum(res.invalid[m] for m in mods), generated=sum(res.beams[m] for m in mods))
        return ranking_metrics(rows, targets, **extras, **gen)

    return scorer


def baseline_rankings(ranker, data) -> dict:
    """A baseline's test metrics as the papers rank (history items may come back) and with them excluded."""
    return {
        "ranking": evaluate_ranker(ranker, data)[0],
        "history_excluded": evaluate_ranker(ranker, data, exclude_history=True)[0],
    }


def run_generator(name: str, data, args, scorer, out: Path | None = None, **train_overrides) -> dict:
    """Train (or resume) one variant (into ``out``, default run_dir/name), rank the test split, return its
    metrics per ranking."""
    tasks, implicit, _ = VARIANTS[name]
    out = out or args.run_dir / name
    overrides = {**train_overrides, **({"max_steps": args.max_steps} if args.max_steps else {})}
    if args.epochs:
        overrides["num_train_epochs"] = args.epochs
    if args.max_train_minutes:
        overrides["max_train_minutes"] = args.max_train_minutes
    if args.max_steps:
        overrides["eval_strategy"] = overrides["save_strategy"] = "no"
        overrides["load_best_model_at_end"] = False
    train_generator(
        args.data,
        out,
        profile=args.profile,
        tasks=tasks,
        implicit=implicit,
        seed=args.seed,
        resume=args.resume and any(out.with_name(out.name + ".checkpoints").glob("checkpoint-*")),
        **overrides,
    )
    pipe = GenRecPipeline.from_pretrained(out, device=args.device)
    record = pipe.train_config
    ranking = VARIANTS[name][2]
    test = evaluation_rows(data, "test", args.max_users)
    start = time.perf_counter()
    res = pipe.rank(
        test["history"],
        modality=ranking,
        k=10,
        num_beams=args.num_beams,
        batch_size=args.eval_batch_size,
        progress=True,
    )
    decode_s = time.perf_counter() - start
    result = {ranking: scorer(res.rows, test["target"], res)}
    for m, (rows, _) in res.per_modality.items():
        if m not in result:
            result[m] = scorer([r[:10] for r in rows], test["target"], res, modality=m)
    excluded = pipe.recombine(res, test["history"], k=10, exclude_history=True)
    result["history_excluded"] = scorer(excluded.rows, test["target"])
    result["curve"] = learning_curve(record["log_history"])
    train_s = record["train_metrics"]["train_runtime"]
    units_per_s = record["train_metrics"]["train_samples_per_second"]
    result["timing"] = {
        "train_s": round(train_s, 1),
        "train_minutes": record.get("train_minutes", round(train_s / 60, 2)),
        "epochs": round(record["log_history"][-1]["epoch"], 2),
        "train_sequences_per_s": round(units_per_s * sequences_per_unit(data, pipe.tokenizer, record["tasks"]), 1),
        "rank_s": round(decode_s, 1),
        "users_per_s": round(len(test) / decode_s, 1),
    }
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=["cpu", "paper"], default="cpu")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default=",".join([*VARIANTS, *BASELINES]), help="comma-separated subset")
    p.add_argument(
        "--run-dir", type=Path, default=None, help="models and checkpoints (default runs/instruments-<profile>)"
    )
    p.add_argument("--resume", action="store_true", help="reuse finished variants, resume unfinished ones")
    p.add_argument("--num-beams", type=int, default=20, help="MACRec / MQL4GRec: 20")
    p.add_argument("--eval-batch-size", type=int, default=64, help="ranking requests per forward")
    p.add_argument(
        "--epochs", type=float, help="override the profile's generator epochs (results get an -epochs<N> suffix)"
    )
    p.add_argument(
        "--max-train-minutes",
        type=float,
        help="wall-clock training budget per generator (results: instruments-budget.*)",
    )
    p.add_argument("--max-steps", type=int, help="smoke run: train each generator this many steps")
    p.add_argument("--max-users", type=int, help="smoke run: rank only the first N test users")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # The 60-minute cpu budget is the canonical instruments-budget; other budgets say theirs.
    args.name = (
        "instruments-budget"
        if args.max_train_minutes == 60 and args.profile == "cpu"
        else f"instruments-{args.profile}"
        + (f"-epochs{args.epochs:g}" if args.epochs else "")
        + (f"-budget{args.max_train_minutes:g}" if args.max_train_minutes else "")
    )
    args.run_dir = args.run_dir or REPO / "runs" / args.name
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS) - set(BASELINES))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {[*VARIANTS, *BASELINES]}")

    data = load_dataset_dir(args.data)  # histories: last 20 items (MACRec)
    scorer = make_scorer(data)

    results, started = {}, time.time()
    for name in variants:
        t0 = time.perf_counter()
        logger.info("=== %s", name)
        done = args.run_dir / name / "benchmark_metrics.json"
        if args.resume and done.is_file():
            logger.info("%s: already finished, reading %s", name, done)
            results[name] = json.loads(done.read_text())
            continue
        if name in VARIANTS:
            results[name] = run_generator(name, data, args, scorer)
        elif name == "popularity":
            results[name] = baseline_rankings(PopularityRecommender().fit(data), data)
        else:  # sasrec: its own history length (50, the paper's), same split and targets
            sdata = load_dataset_dir(args.data, max_history=SASRecConfig.max_len)
            sasrec = SASRecRecommender(SASRecConfig(seed=args.seed, device=args.device)).fit(sdata)
            log = sasrec.log
            results[name] = {
                **baseline_rankings(sasrec, sdata),
                "curve": [{"minutes": e["train_minutes"], "valid_ndcg@10": e["valid_NDCG@10"]} for e in log],
                "timing": {
                    "epochs": len(log),
                    "train_s": round(time.perf_counter() - t0, 1),
                    "train_minutes": log[-1]["train_minutes"],
                },
            }
        results[name].setdefault("timing", {})["wall_s"] = round(time.perf_counter() - t0, 1)
        results[name]["commit"] = git_commit()  # variants may come from separate invocations
        if not (args.max_steps or args.max_users):
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(results[name], indent=1))
        logger.info("%s: %s", name, json.dumps(headline(results[name])))
    # Variants finished by earlier invocations in this run folder join the report.
    for name in [*VARIANTS, *BASELINES]:
        done = args.run_dir / name / "benchmark_metrics.json"
        if name not in results and done.is_file() and not (args.max_steps or args.max_users):
            results[name] = json.loads(done.read_text())
    results = {n: results[n] for n in [*VARIANTS, *BASELINES] if n in results}
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
    excluded_table = metrics_table(
        {n: r["history_excluded"] for n, r in results.items() if "history_excluded" in r},
        list(MAIN_KEYS) + ["coverage@10"],
    )
    curves = curve_table(results)
    detail_table = metrics_table(rows, [k for k in DETAIL_KEYS if any(k in r for r in rows.values())])
    timing = [
        "| variant | train s | train min | epochs | train sequences/s | rank s | users/s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        t = res.get("timing", {})
        timing.append(
            "| "
            + " | ".join(
                [name]
                + [
                    str(t.get(k, ""))
                    for k in (
                        "train_s",
                        "train_minutes",
                        "epochs",
                        "train_sequences_per_s",
                        "rank_s",
                        "users_per_s",
                        "wall_s",
                    )
                ]
            )
            + " |"
        )
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
    if args.max_train_minutes:
        command += f" --max-train-minutes {args.max_train_minutes:g}"
    if args.variants != ",".join([*VARIANTS, *BASELINES]):
        command += f" --variants {args.variants}"
    text = "\n".join(
        [
            f"# Amazon Instruments, profile `{args.profile}`"
            + (f", {args.epochs:g} epochs" if args.epochs else "")
            + (f", {args.max_train_minutes:g}-minute training budget per model" if args.max_train_minutes else ""),
            "",
            f"Command: `{command}` ({total_s / 60:.0f} min in all).",
            "",
            f"Machine: {describe(args.device)}; transformers {transformers.__version__}, genrec {genrec.__version__}. "
            f"Seed {args.seed}. Commit per variant: "
            + ", ".join(f"{n} {r.get('commit', 'not recorded')}" for n, r in results.items())
            + ".",
            "",
            f"Data: `{args.data.name}`, {data.n_items} items, {len(data.splits['test'])} test users, "
            f"{len(data.splits['train'])} train rows, the semantic IDs MQL4GRec released (4 x 256 per modality). "
            "Test split, leave-one-out, whole catalogue ranked, history <= 20 items (SASRec: 50), no user dropped, "
            f"history items not excluded. Generators: constrained beam search, {args.num_beams} beams per modality, "
            "MACRec fusion (mean score, +1 when in both lists).",
            "",
            f"Generator profile `{args.profile}`: model {json.dumps(profile['model'])} over MACRec's defaults "
            "(d_model 128, 6 heads, dropout 0.1); training "
            + json.dumps(profile["args"])
            + (f", epochs overridden to {args.epochs:g}" if args.epochs else "")
            + (
                f"; budget {args.max_train_minutes:g} min per generator (schedule on the clock, best validation "
                "NDCG@10 checkpoint kept)"
                if args.max_train_minutes
                else ""
            )
            + ".",
            "",
            "## Test metrics",
            "",
            main_table,
            "",
            "Headline (in the .json): fused for genrec / all_tasks / no_implicit, text for tiger.",
            "",
            "## Extras",
            "",
            "coverage@10 = distinct items in all top-10 lists / catalogue; long_tail@10 = share of top-10 slots "
            "outside the 20% most trained-on items; cold_start = the users whose test target never occurs in a "
            "training sequence.",
            "",
            detail_table,
            "",
            "## History items excluded",
            "",
            "The same models, each user's history items removed from the ranking (a generator's list can then hold "
            "fewer than 10 items).",
            "",
            excluded_table,
            "",
            "## Learning curves (validation NDCG@10 against training minutes)",
            "",
            "Generators: a fixed sample of validation users, ranked with the fast constrained decoder at each "
            "evaluation of a budget run; SASRec: every validation user, after each epoch.",
            "",
            *curves,
            "",
            "## Cost",
            "",
            *timing,
            "",
            "## Published on this split",
            "",
            *published,
            "",
        ]
    )
    out = REPO / "benchmarks" / "results" / args.name
    payload = {
        "test": {
            n: {
                **{k.lower(): headline(r)[k] for k in (*MAIN_KEYS, "coverage@10") if k in headline(r)},
                "train_minutes": r.get("timing", {}).get("train_minutes"),
                "commit": r.get("commit"),
                "history_excluded": {
                    k.lower(): v for k, v in r.get("history_excluded", {}).items() if k in (*MAIN_KEYS, "coverage@10")
                },
            }
            for n, r in results.items()
        },
        "curves": {n: r["curve"] for n, r in results.items() if r.get("curve")},
    }
    plot_curves(payload["curves"], out.with_name(out.name + "-curves.png"))
    write_results(out, text, payload)


def curve_table(results: dict) -> list[str]:
    lines = ["| variant | (training minutes, validation NDCG@10) at each evaluation |", "|---|---|"]
    for name, res in results.items():
        if res.get("curve"):
            points = ", ".join(f"({p['minutes']:.1f}, {p['valid_ndcg@10']:.4f})" for p in res["curve"])
            lines.append(f"| {name} | {points} |")
    return lines if len(lines) > 2 else ["no learning curves in this run (only budget runs evaluate on the clock)"]


def plot_curves(curves: dict, path: Path) -> None:
    """PNG of validation NDCG@10 against training minutes (matplotlib: the ``plots`` extra)."""
    if not curves:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'genrec[plots]'): no curve plot written")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        ax.plot([p["minutes"] for p in points], [p["valid_ndcg@10"] for p in points], marker="o", ms=3, label=name)
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("validation NDCG@10")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
