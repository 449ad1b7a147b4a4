"""genrec against TIGER-style, SASRec and popularity at an equal wall-clock training budget, on any dataset.

    python benchmarks/budget.py --data ../shared/data/amazon-instruments-lcrec            # 60 min per generator
    python benchmarks/budget.py --data DIR --max-train-minutes 30 --variants genrec,sasrec,popularity
    python benchmarks/budget.py --data DIR --epochs 3          # a fixed number of epochs instead of a budget
    python benchmarks/budget.py --profile paper --epochs 200 --resume   # MACRec's settings, for a GPU

Variants, all on the same split, seed and generator profile (the recipe as shipped: no flag is chosen per
dataset):

* ``genrec``: the profile's tasks that the dataset's IDs allow (``cpu``: ``seqrec`` + ``seqimage`` + implicit
  loss; text IDs only: ``seqrec`` + implicit loss), fused ranking where there are two modalities;
* ``tiger``: text IDs only, ``seqrec`` only, no implicit loss (TIGER-style), text ranking;
* ``all_tasks``: MACRec's six tasks (those the IDs allow) + implicit loss; ``no_implicit``: the profile's
  tasks without the implicit loss;
* ``popularity``: most trained-on items first; ``sasrec``: our SASRec (CE loss), best epoch on valid (early
  stopping ends it well inside a generator's budget; its minutes are reported).

Every model ranks the whole catalogue for every test user (20 beams per modality for the generators,
MACRec's fusion), once as the papers do (history items may be recommended) and once with history items
excluded. Writes benchmarks/results/budget-<dataset folder>.md and .json for the 60-minute `cpu` run
(``{"test": {variant: {ndcg@10, hr@10, coverage@10, train_minutes, ..., "history_excluded": {...}}},
"curves", "machine", "commit", "command", "load"}``), ``budget<N>-...`` / ``epochs<N>-...`` for other runs,
and a PNG of the learning curves. A budget means something only on an otherwise idle machine: the script
samples the load average and each generator's steps per second through its run, and its report warns when
another job shared the machine. Each invocation merges the variants finished in its run folder, so variants
may run one at a time. Runs cut short with --max-steps / --max-users are smoke runs: they print their table
and write no result files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import torch
import transformers
from arms import Arm, train_arm
from machine import describe, git_commit, provenance, results_path, write_results

import genrec
from genrec import TASK_MODALITIES
from genrec.baselines import PopularityRecommender, SASRecConfig, SASRecRecommender
from genrec.data import load_dataset_dir
from genrec.eval import MAIN_KEYS, catalogue_extras, metrics_table, ranking_metrics
from genrec.eval.evaluation import evaluate_ranker, evaluation_rows
from genrec.pipeline import GenRecPipeline
from genrec.tasks import PAIR_UNIT, build_task_dataset
from genrec.trainers.budget import MINUTES_KEY, learning_curve

logger = logging.getLogger("benchmarks.budget")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
ALL_TASKS = list(genrec.TASKS)
# variant -> (tasks, implicit loss, ranking); tasks None = the profile's; each keeps the tasks the IDs allow,
# and "fused" ranks the one modality there is on a single-modality dataset
VARIANTS = {
    "genrec": (None, True, "fused"),  # the profile as shipped
    "tiger": (["seqrec"], False, "text"),
    "all_tasks": (ALL_TASKS, True, "fused"),  # MACRec's six tasks
    "no_implicit": (None, False, "fused"),  # the profile without the implicit alignment loss
}
BASELINES = ("popularity", "sasrec")
# Published on a dataset's split (HR@1, HR@5, HR@10, NDCG@5, NDCG@10), by dataset folder; see its SOURCE.md.
PUBLISHED = {
    "amazon-instruments-mql4grec": {
        "MACRec paper (own IDs)": (0.0819, 0.1110, 0.1363, 0.0965, 0.1046),
        "MQL4GRec w/o pretraining (MACRec paper)": (0.0763, 0.1058, 0.1291, 0.0902, 0.0997),
        "TIGER (MACRec paper)": (0.0754, 0.1007, 0.1221, 0.0882, 0.0950),
        "SASRec (MACRec paper)": (0.0318, 0.0946, 0.1233, 0.0654, 0.0746),
        "MQL4GRec reproduction, fused (xym0601)": (0.0718, 0.1119, 0.1383, 0.0920, 0.1006),
    }
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
LOAD_SAMPLE_S = 15  # seconds between load-average samples
SHARED_LOAD = 1.25  # a 1-minute load average above this many times the CPU count means another job ran


def variant_plan(name: str, modalities: list[str]) -> tuple[list[str] | None, str] | None:
    """(tasks, ranking) of a generator variant on a dataset with ``modalities``' IDs; None when its IDs are
    missing (tiger without text IDs)."""
    tasks, _, ranking = VARIANTS[name]
    if tasks is not None:
        tasks = [t for t in tasks if set(TASK_MODALITIES[t]) <= set(modalities)]
        if not tasks:
            return None
    if ranking == "fused" and len(modalities) == 1:
        ranking = modalities[0]
    return (tasks, ranking) if ranking == "fused" or ranking in modalities else None


class LoadMonitor:
    """Samples the 1-minute load average every ``LOAD_SAMPLE_S`` seconds while a variant runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(LOAD_SAMPLE_S):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        load = self.samples or [os.getloadavg()[0]]
        mean = sum(load) / len(load)
        return {"mean": round(mean, 2), "max": round(max(load), 2), "shared": mean > SHARED_LOAD * os.cpu_count()}


def training_pace(log_history: list[dict]) -> dict:
    """Steps per second between consecutive training logs of a budget run (evaluations excluded): its median
    and lowest, so a stretch slowed by another job shows."""
    logs = [e for e in log_history if MINUTES_KEY in e and "loss" in e]
    evals = [e["step"] for e in log_history if "eval_loss" in e or "eval_ndcg@10" in e]
    pace = [
        (b["step"] - a["step"]) / (60 * (b[MINUTES_KEY] - a[MINUTES_KEY]))
        for a, b in zip(logs, logs[1:])
        if b[MINUTES_KEY] > a[MINUTES_KEY] and not any(a["step"] <= s < b["step"] for s in evals)
    ]
    if not pace:
        return {}
    return {"steps_per_s_median": round(statistics.median(pace), 2), "steps_per_s_min": round(min(pace), 2)}


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
    tasks, ranking = variant_plan(name, list(data.semantic_ids))
    out = out or args.run_dir / name
    overrides = {**train_overrides, **({"max_steps": args.max_steps} if args.max_steps else {})}
    if args.epochs:
        overrides["num_train_epochs"] = args.epochs
    if args.max_train_minutes:
        overrides["max_train_minutes"] = args.max_train_minutes
    if args.max_steps:
        overrides["eval_strategy"] = overrides["save_strategy"] = "no"
        overrides["load_best_model_at_end"] = False
    settings = {"implicit": VARIANTS[name][1], "seed": args.seed, **overrides, **({"tasks": tasks} if tasks else {})}
    recipe = train_arm(Arm(args.profile, args=settings), args.data, out, resume=args.resume)
    pipe = GenRecPipeline.from_pretrained(out, device=args.device)
    record = pipe.train_config
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
        **training_pace(record["log_history"]),
        "rank_s": round(decode_s, 1),
        "users_per_s": round(len(test) / decode_s, 1),
    }
    result["recipe"] = recipe
    return result


def run_sasrec(args, t0: float) -> dict:
    """Our SASRec with its own history length (50, the paper's), same split and targets."""
    sdata = load_dataset_dir(args.data, max_history=SASRecConfig.max_len)
    sasrec = SASRecRecommender(SASRecConfig(seed=args.seed, device=args.device)).fit(sdata)
    log = sasrec.log
    return {
        **baseline_rankings(sasrec, sdata),
        "curve": [{"minutes": e["train_minutes"], "valid_ndcg@10": e["valid_NDCG@10"]} for e in log],
        "timing": {
            "epochs": len(log),
            "train_s": round(time.perf_counter() - t0, 1),
            "train_minutes": log[-1]["train_minutes"],
        },
    }


def run_name(args) -> str:
    """``budget-<data>`` for the canonical 60-minute cpu run, else the budget or epochs, profile and data."""
    if args.epochs:
        return f"epochs{args.epochs:g}-{Path(args.profile).stem}-{args.data.name}"
    if args.max_train_minutes == 60 and args.profile == "cpu":
        return f"budget-{args.data.name}"
    return f"budget{args.max_train_minutes:g}-{Path(args.profile).stem}-{args.data.name}"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder (default: Instruments, MQL4GRec)")
    p.add_argument(
        "--profile",
        default="cpu",
        help="the generators' profile: cpu or paper as shipped, or a recipe file (a past result's, saved as .yaml)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--variants",
        default="genrec,tiger,sasrec,popularity",
        help=f"comma-separated subset of {','.join([*VARIANTS, *BASELINES])}",
    )
    p.add_argument("--run-dir", type=Path, default=None, help="models and checkpoints (default runs/<result name>)")
    p.add_argument("--resume", action="store_true", help="reuse finished variants, resume unfinished ones")
    p.add_argument("--num-beams", type=int, default=20, help="MACRec / MQL4GRec: 20")
    p.add_argument("--eval-batch-size", type=int, default=64, help="ranking requests per forward")
    p.add_argument("--max-train-minutes", type=float, default=60, help="wall-clock training budget per generator")
    p.add_argument("--epochs", type=float, help="train each generator this many epochs instead of to a budget")
    p.add_argument("--max-steps", type=int, help="smoke run: train each generator this many steps")
    p.add_argument("--max-users", type=int, help="smoke run: rank only the first N test users")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.epochs:
        args.max_train_minutes = None
    args.name = run_name(args)
    args.run_dir = args.run_dir or REPO / "runs" / args.name
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS) - set(BASELINES))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {[*VARIANTS, *BASELINES]}")
    return args


def run_variant(name: str, data, args, scorer) -> dict:
    t0 = time.perf_counter()
    with LoadMonitor() as load:
        if name in VARIANTS:
            result = run_generator(name, data, args, scorer)
        elif name == "popularity":
            result = baseline_rankings(PopularityRecommender().fit(data), data)
        else:
            result = run_sasrec(args, t0)
    result.setdefault("timing", {})["wall_s"] = round(time.perf_counter() - t0, 1)
    result["load"] = load.summary()
    result["commit"] = git_commit()  # variants may come from separate invocations
    return result


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = load_dataset_dir(args.data)  # histories: last 20 items (MACRec)
    modalities = list(data.semantic_ids)
    skipped = {}
    for name in args.variants:
        if name in VARIANTS and variant_plan(name, modalities) is None:
            skipped[name] = f"no {VARIANTS[name][2]} IDs in this dataset"
        elif name == "tiger" and modalities == ["text"] and "genrec" in args.variants:
            skipped[name] = "the same run as genrec here: the implicit loss needs two modalities"
    for name, why in skipped.items():
        logger.info("not running %s: %s", name, why)
    scorer = make_scorer(data)
    results, started = {}, time.time()
    for name in [v for v in args.variants if v not in skipped]:
        logger.info("=== %s", name)
        done = args.run_dir / name / "benchmark_metrics.json"
        if args.resume and done.is_file():
            logger.info("%s: already finished, reading %s", name, done)
            results[name] = json.loads(done.read_text())
            continue
        results[name] = run_variant(name, data, args, scorer)
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
    write_report(results, args, data, time.time() - started, skipped)


def headline(result: dict) -> dict:
    """The ranking a variant is judged by: fused when there is one, else its only one."""
    return result.get("fused") or result.get("text") or result["ranking"]


def cost_table(results: dict) -> list[str]:
    keys = ("train_s", "train_minutes", "epochs", "train_sequences_per_s", "rank_s", "users_per_s", "wall_s")
    lines = ["| variant | " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(str(res.get("timing", {}).get(k, "")) for k in keys) + " |")
    return lines


def load_lines(results: dict) -> list[str]:
    """The machine's load and each generator's pace through its run, and a warning when it was shared."""
    lines = [
        "| variant | load average, mean | load average, max | steps/s, median | steps/s, lowest |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        load, t = res.get("load", {}), res.get("timing", {})
        cells = [load.get("mean"), load.get("max"), t.get("steps_per_s_median"), t.get("steps_per_s_min")]
        lines.append(f"| {name} | " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    shared = [n for n, r in results.items() if r.get("load", {}).get("shared")]
    if shared:
        lines += [
            "",
            f"**Warning: another job shared the machine during {', '.join(shared)}** (mean 1-minute load "
            f"above {SHARED_LOAD} x {os.cpu_count()} CPUs): their budgets bought fewer steps than an idle "
            "machine gives.",
        ]
    return lines


def id_description(data) -> str:
    return ", ".join(f"{m} {ids.shape[1]} x {int(ids.max()) + 1}" for m, ids in data.semantic_ids.items())


def write_report(results: dict, args, data, total_s: float, skipped: dict) -> None:
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
    detail_table = metrics_table(rows, [k for k in DETAIL_KEYS if any(k in r for r in rows.values())])
    print(main_table, detail_table, "\n".join(cost_table(results)), "\n".join(load_lines(results)), sep="\n\n")
    command = provenance()["command"]
    machine = f"{describe(args.device)}; transformers {transformers.__version__}, genrec {genrec.__version__}"
    text = "\n".join(
        [
            *report_header(args, data, command, machine, total_s, results, skipped),
            "## Test metrics",
            "",
            main_table,
            "",
            "Headline (in the .json): fused where a generator ranks two modalities, else its one ranking.",
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
            *curve_table(results),
            "",
            "## Cost and machine load",
            "",
            *cost_table(results),
            "",
            *load_lines(results),
            "",
            *published_lines(args.data.name),
        ]
    )
    out = results_path(args.name)
    payload = {
        "command": command,
        "machine": machine,
        "commit": git_commit(),
        "test": {n: json_figures(r) for n, r in results.items()},
        "load": {n: {**r.get("load", {}), **training_pace_of(r)} for n, r in results.items()},
        "skipped": skipped,
        "curves": {n: r["curve"] for n, r in results.items() if r.get("curve")},
        "recipes": {n: r["recipe"] for n, r in results.items() if "recipe" in r},
    }
    smoke = bool(args.max_steps or args.max_users)
    if not smoke:
        plot_curves(payload["curves"], out.with_name(out.name + "-curves.png"))
    write_results(out, text, payload, smoke=smoke)


def training_pace_of(result: dict) -> dict:
    return {k: v for k, v in result.get("timing", {}).items() if k.startswith("steps_per_s")}


def json_figures(result: dict) -> dict:
    keys = (*MAIN_KEYS, "coverage@10")
    return {
        **{k.lower(): headline(result)[k] for k in keys if k in headline(result)},
        "train_minutes": result.get("timing", {}).get("train_minutes"),
        "commit": result.get("commit"),
        "history_excluded": {k.lower(): v for k, v in result.get("history_excluded", {}).items() if k in keys},
    }


def report_header(args, data, command, machine, total_s, results, skipped) -> list[str]:
    profile = Arm(args.profile).recipe()["profile"]
    what = f"{args.epochs:g} epochs" if args.epochs else f"a {args.max_train_minutes:g}-minute training budget"
    schedule = (
        f", epochs set to {args.epochs:g}"
        if args.epochs
        else f"; budget {args.max_train_minutes:g} min per generator (schedule on the clock, best validation "
        "NDCG@10 checkpoint kept)"
    )
    return [
        f"# `{args.data.name}`: genrec and baselines at {what} per model (profile `{args.profile}`)",
        "",
        f"Command: `{command}` ({total_s / 60:.0f} min in this invocation).",
        "",
        f"Machine: {machine}. Seed {args.seed}. Commit per variant: "
        + ", ".join(f"{n} {r.get('commit', 'not recorded')}" for n, r in results.items())
        + ".",
        "",
        f"Data: `{args.data.name}`, {data.n_items} items, {len(data.splits['test'])} test users, "
        f"{len(data.splits['train'])} train rows, semantic IDs (levels x codes): {id_description(data)}. "
        "Test split, leave-one-out, whole catalogue ranked, history <= 20 items (SASRec: 50), no user dropped, "
        f"history items not excluded. Generators: constrained beam search, {args.num_beams} beams per modality, "
        "MACRec fusion (mean score, +1 when in both lists) where there are two modalities.",
        "",
        *(f"Not run: `{n}`, {why}." for n, why in skipped.items()),
        *([""] if skipped else []),
        f"Generator profile `{args.profile}`: model {json.dumps(profile['model'])} over MACRec's defaults "
        f"(d_model 128, 6 heads, dropout 0.1); training {json.dumps(profile['args'])}{schedule}. The profile's "
        "tasks that the dataset's IDs cannot serve are left out. Each generator's whole recipe, as trained, is "
        "under `recipes` in the JSON (saved as a .yaml file, `--profile FILE` trains it again).",
        "",
    ]


def published_lines(dataset: str) -> list[str]:
    published = PUBLISHED.get(dataset)
    if not published:
        return []
    lines = ["## Published on this split", "", "| published | " + " | ".join(MAIN_KEYS) + " |"]
    lines.append("|---|" + "---:|" * len(MAIN_KEYS))
    return lines + [f"| {k} | " + " | ".join(f"{x:.4f}" for x in v) + " |" for k, v in published.items()] + [""]


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
