"""Ranking-time levers on a trained generator, chosen on validation only: the popularity correction, the
beam width, the average of the kept checkpoints, and the fusion of the two modality lists (weights, rule).
No weight is trained; every setting re-ranks the same seeded validation users.

    python benchmarks/ranking_levers.py --model runs/instruments-budget/genrec           # validation sweep
    python benchmarks/ranking_levers.py --model runs/instruments-budget/genrec --test    # + test, once, chosen setting

The test split is ranked once, with the setting that won on validation. Writes
benchmarks/results/ranking-levers.md and .json on the default dataset, ranking-levers-<dataset folder>.* on
another (the sweep is cached beside the model: resumable). A model of one modality has no fusion to choose.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from budget import DEFAULT_DATA
from machine import describe, git_commit, provenance, results_path, write_results

from genrec.data import load_dataset_dir
from genrec.eval import MAIN_KEYS, metrics_table, ranking_metrics
from genrec.pipeline import GenRecPipeline

# decode setting -> (popularity correction, beams, average the kept checkpoints); None: the model's default
DECODES = {
    "base": (None, 20, False),
    "correction 0": (0.0, 20, False),
    "correction 0.1": (0.1, 20, False),
    "correction 0.25": (0.25, 20, False),
    "correction 0.75": (0.75, 20, False),
    "beams 40": (None, 40, False),
    "checkpoint average": (None, 20, True),
}
# fusion setting -> (rule, text weight, image weight); MACRec's rule with equal weights is the default
FUSIONS = {
    "macrec": ("macrec", 1.0, 1.0),
    "macrec text 0.75": ("macrec", 0.75, 1.0),
    "macrec text 0.5": ("macrec", 0.5, 1.0),
    "macrec image 0.75": ("macrec", 1.0, 0.75),
    "rrf": ("rrf", 1.0, 1.0),
    "sum": ("sum", 1.0, 1.0),
}

# A setting other than the default fusion must beat the best default-fusion one by more than this share
# (one seed on 8,000 users moves NDCG@10 by about 1%): ties keep MACRec's rule.
MIN_GAIN = 0.01

logger = logging.getLogger("ranking_levers")


def averaged_checkpoints(model_dir: Path) -> tuple[dict, list[str]]:
    """The mean of the weights of every checkpoint kept beside ``model_dir`` (the trainer keeps the best and
    the last), and their names."""
    from transformers import AutoModelForSeq2SeqLM

    folders = sorted(model_dir.with_name(model_dir.name + ".checkpoints").glob("checkpoint-*"))
    if len(folders) < 2:
        raise SystemExit(f"{model_dir}.checkpoints: {len(folders)} checkpoint(s) kept; averaging needs two or more")
    states = [AutoModelForSeq2SeqLM.from_pretrained(f).state_dict() for f in folders]
    return {k: sum(s[k] for s in states) / len(states) for k in states[0]}, [f.name for f in folders]


def decode(pipe: GenRecPipeline, model_dir: Path, setting: str, histories):
    correction, beams, average = DECODES[setting]
    kept = None
    if average:
        kept = {k: v.clone() for k, v in pipe.model.state_dict().items()}
        state, names = averaged_checkpoints(model_dir)
        pipe.model.load_state_dict(state)
        logger.info("averaged %s", names)
    try:
        return pipe.rank(
            histories, modality="fused", k=10, num_beams=beams, popularity_correction=correction, progress=True
        )
    finally:
        if kept is not None:
            pipe.model.load_state_dict(kept)


def fused_rows(pipe, res, histories, fusion: str, exclude_history: bool = False) -> list[list[int]]:
    rule, text, image = FUSIONS[fusion]
    weights = {m: w for m, w in (("text", text), ("image", image)) if m in pipe.modalities_for("fused")}
    return pipe.recombine(
        res, histories, k=10, fusion=rule, exclude_history=exclude_history, modality_weights=weights
    ).rows


def sweep(pipe, model_dir: Path, valid, n_items: int, cache: Path) -> dict:
    """NDCG@10 / HR@10 / coverage@10 of every (decode, fusion) pair on the validation users, cached."""
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    fusions = list(FUSIONS) if len(pipe.modalities_for("fused")) > 1 else ["macrec"]
    for setting in DECODES:
        if all(f"{setting} / {f}" in results for f in fusions):
            continue
        start = time.perf_counter()
        res = decode(pipe, model_dir, setting, valid["history"])
        for fusion in fusions:
            m = ranking_metrics(
                fused_rows(pipe, res, valid["history"], fusion), valid["target"], ks=(10,), n_items=n_items
            )
            results[f"{setting} / {fusion}"] = {k: m[k] for k in ("NDCG@10", "HR@10", "coverage@10")}
        logger.info(
            "%s: %.0f s; %s",
            setting,
            time.perf_counter() - start,
            json.dumps({f: results[f"{setting} / {f}"]["NDCG@10"] for f in fusions}),
        )
        cache.write_text(json.dumps(results, indent=1))
    return results


def choose(results: dict) -> str:
    """The best validation NDCG@10, where a fusion other than the default must win by ``MIN_GAIN``."""
    ndcg = {name: r["NDCG@10"] for name, r in results.items()}
    default = max((n for n in ndcg if n.endswith(" / macrec")), key=ndcg.get)
    best = max(ndcg, key=ndcg.get)
    return best if ndcg[best] > ndcg[default] * (1 + MIN_GAIN) else default


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="a generator folder written by a budget run")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--users", type=int, default=8000, help="validation users ranked (seeded sample)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--test", action="store_true", help="rank the test split once with the chosen setting")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pipe = GenRecPipeline.from_pretrained(args.model)
    data = load_dataset_dir(args.data, max_history=pipe.max_history)
    valid = data.splits["valid"].shuffle(seed=args.seed).select(range(min(args.users, len(data.splits["valid"]))))
    cache = args.model / f"ranking_levers-{args.data.name}-u{len(valid)}-s{args.seed}.json"
    results = sweep(pipe, args.model, valid, data.n_items, cache)
    chosen = choose(results)
    logger.info("chosen on validation: %s (%s)", chosen, json.dumps(results[chosen]))
    test = None
    if args.test:
        setting, fusion = chosen.split(" / ")
        split = data.splits["test"]
        res = decode(pipe, args.model, setting, split["history"])
        test = {
            "all": ranking_metrics(
                fused_rows(pipe, res, split["history"], fusion), split["target"], n_items=data.n_items
            ),
            "history_excluded": ranking_metrics(
                fused_rows(pipe, res, split["history"], fusion, True), split["target"], n_items=data.n_items
            ),
        }
    write_report(args, results, chosen, test, len(valid))


def write_report(args, results: dict, chosen: str, test: dict | None, n_valid: int) -> None:
    table = metrics_table({name + (" **(chosen)**" if name == chosen else ""): r for name, r in results.items()})
    lines = [
        "# Ranking-time levers (validation), on one trained generator",
        "",
        f"Command: `{provenance()['command']}`. Machine: {describe('cpu')}. Seed {args.seed}, commit {git_commit()}.",
        "",
        f"{n_valid} validation users (seeded sample), whole catalogue, history items not excluded. Decode settings: "
        "popularity correction a (None: the model's saved default), beams per modality, and the mean of the "
        "weights of the checkpoints the trainer kept (its best and its last). Fusion: MACRec's rule with per-"
        "modality weights (`GenRecPipeline.rank(modality_weights=...)`), reciprocal-rank fusion, CombSUM. "
        f"{len(DECODES)} decode x {len(results) // len(DECODES)} fusion settings = {len(results)} configurations, all on "
        f"validation; a fusion other than MACRec's equal-weight rule is chosen only when it wins by more than "
        f"{MIN_GAIN:.0%}.",
        "",
        table,
        "",
    ]
    if test:
        lines += [
            f"## Test, ranked once with the chosen setting ({chosen})",
            "",
            metrics_table(
                {"all users": test["all"], "history items excluded": test["history_excluded"]},
                [*MAIN_KEYS, "coverage@10"],
            ),
            "",
        ]
    print("\n".join(lines))
    name = "ranking-levers" + ("" if args.data.resolve() == DEFAULT_DATA.resolve() else f"-{args.data.name}")
    write_results(
        results_path(name),
        "\n".join(lines),
        {
            "validation": results,
            "chosen": chosen,
            "validation_users": n_valid,
            "test": {k: {m.lower(): v for m, v in r.items()} for k, r in test.items()} if test else None,
        },
    )


if __name__ == "__main__":
    main()
