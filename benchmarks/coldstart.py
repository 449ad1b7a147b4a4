"""New items and missing modalities on Amazon Instruments: the cold-start protocol and the SiBraR question.

    python benchmarks/coldstart.py            # 2-core CPU, over an hour (README states the last run); resumable

Cold start. A seeded random 5% of the items are *held out*: their interactions are dropped from every
sequence except as a test target (histories and training sequences keep the rest, in order). A generator
is trained on the remaining 95% of the catalogue (``cpu`` profile, its 3 epochs, plus MACRec's cross-modal
next-item tasks, and the item2image and image2item tasks on a seeded half of the items; no held-out item in its
vocabulary of IDs), the held-out
items are added with ``genrec add-items`` (their released IDs; an ID that a training item already has moves
to the first free last-level code under its prefix, the rule of the quantizer's collision resolution, counted
in the report), and the test split is ranked over the whole catalogue. Cold slice: users whose test target
is a held-out item; warm slice: the others.
Models: genrec with its cold-start slots at several shares, genrec without them, popularity, SASRec
(trained on the same 95%: it has no embedding for an unseen item and cannot rank one) and a content
baseline ranking by semantic-ID prefix overlap with the history. The share is chosen on validation: users
whose validation target is held out (cold) and a sample of the others (warm), histories before it.

Missing modality. On the same model with the complete catalogue, a seeded p = 0/25/50/75/100% of the items
lose their image IDs (separately: their text IDs) at test time. Such an item can only come from the other
modality's beams; fusion counts it as present in the list it cannot appear in (``impute_missing``), or not.
A history lacking some image IDs is read for the image list in its text IDs through the cross-modal task
(``cross_modal_history``), or in its own image IDs only, the list then weighed by the share of the history it
could read, to a power. Route and power are chosen on validation (every validation user; the mean over
p = 25/50/75% of either modality); fused and single-modality NDCG@10 for every p.
Or the missing IDs are predicted from the other modality's by the generator's own item tasks
(``fill_missing_ids``), which learned them only on the half of the items no sample up to p = 50% touches.
The same on the synthetic catalogue with embeddings, where the quantizer itself meets NaN rows.

Writes benchmarks/results/coldstart.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
from arms import Arm, train_arm
from budget import DEFAULT_DATA, REPO
from machine import describe, git_commit, results_path, write_results

from genrec.baselines import PopularityRecommender, SASRecConfig, SASRecRecommender
from genrec.data import load_dataset_dir
from genrec.data.loading import SEQUENCES_FILE, read_items, read_jsonl
from genrec.eval import catalogue_extras, metrics_table, ranking_metrics
from genrec.eval.evaluation import check_catalogue
from genrec.eval.target_positions import target_ranks
from genrec.pipeline import GenRecPipeline
from genrec.quantizer.collisions import resolve_collisions
from genrec.ranking import CROSS_MODAL_WEIGHT, HISTORY_COVERAGE_POWER, RankResult

HELD_OUT_SHARE = 0.05
MODALITIES = ("text", "image")
SHARES = (0.1, 0.2, 0.3, 0.5)  # cold-start shares tried on validation (1, 2, 3, 5 of 10 slots)
MAX_WARM_LOSS = 0.03  # the bound on the warm-slice NDCG@10 the mechanism may cost
MISSING_P = (0, 25, 50, 75, 100)
# History-coverage powers of the missing-modality fusion tried on validation (0: imputation alone).
POWERS = (0, 0.5, 1, 2, 4, math.inf)
# Fusion weights of a list read through the cross-modal task tried on validation (0: the list left out).
CROSS_WEIGHTS = (0, 0.25, 0.5, 0.75, 1)
# The generator learns MACRec's cross-modal next-item tasks (seqitem2image, seqimage2item: a history read in one
# modality's IDs, the next item's ID in the other), which let a list read a history lacking its own IDs.
# It also learns MACRec's item tasks (text IDs -> image IDs and back), but only on the half of the
# items that no missing-modality sample up to 50% takes a modality from: the items whose IDs it predicts at
# p <= 50% never had their text -> image pair as an item-task target (our protocol; the sequence tasks and the
# implicit loss still see both modalities of every training item, as the missing-modality protocol drops IDs at
# test time only; at p = 75% some would have been targets, so the predicted IDs are not measured there).
TRAIN_TASKS = ["seqrec", "seqimage", "seqitem2image", "seqimage2item", "item2image", "image2item"]
ITEM_TASK_SHARE = 0.5
VALID_WARM_USERS = 4000
CONTENT_DECAY = 0.9  # content baseline: weight of a history item per step back (our choice, not tuned)
KS = (1, 5, 10)

logger = logging.getLogger("coldstart")


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def read_lists(path: Path):
    """A cached (fused result, own-IDs-only result or None) pair, or None when there is none."""
    if not path.is_file():
        return None
    res, alone = json.loads(path.read_text())
    return RankResult.from_dict(res), RankResult.from_dict(alone) if alone else None


def write_lists(path: Path, cached) -> None:
    path.write_text(json.dumps([r.to_dict() if r is not None else None for r in cached]))


def missing_rows(seed: int, n: int, p: float) -> np.ndarray:
    """The seeded p% of ``n`` catalogue rows that lose a modality (nested: a larger p adds rows)."""
    return np.random.default_rng(seed).permutation(n)[: round(p / 100 * n)]


def split_catalogue(src: Path, work: Path, seed: int) -> dict:
    """Write ``work/train-data`` (the 95%), ``work/eval-data`` (all items, training items first; test targets
    restored), ``work/new-items`` (the held-out items' jsonl and IDs for ``add-items``); return the protocol's
    facts. Sequences: held-out items dropped everywhere but as a test target."""
    items = read_items(src / "items.jsonl")
    sids = {m: np.load(src / f"sid_{m}.npy").astype(np.int64) for m in MODALITIES}
    n = len(items)
    held = np.sort(np.random.default_rng(seed).choice(n, size=round(HELD_OUT_SHARE * n), replace=False))
    is_held = np.zeros(n, dtype=bool)
    is_held[held] = True
    kept = np.flatnonzero(~is_held)
    order = np.concatenate([kept, held])  # catalogue rows after add-items: training items, then the new ones
    ids = [items[r]["item_id"] for r in range(n)]

    sequences = [s for _, s in read_jsonl(src / SEQUENCES_FILE)]
    train_seqs, eval_seqs, cold_valid = [], [], []
    index = {str(i): r for r, i in enumerate(ids)}
    for s in sequences:
        rows = [index[str(i)] for i in s["items"]]
        before = [r for r in rows[:-1] if not is_held[r]]
        if len(before) < 2:  # leave-one-out needs a train and a valid target besides the test target
            continue
        target = rows[-1]
        eval_seqs.append({"user_id": s["user_id"], "items": [ids[r] for r in before + [target]]})
        # the training folder's test target is never read; a known item stands in for a held-out one
        train_seqs.append(
            {"user_id": s["user_id"], "items": [ids[r] for r in before + [before[-1] if is_held[target] else target]]}
        )
        if len(rows) >= 3 and is_held[rows[-2]]:
            hist = [r for r in rows[:-2] if not is_held[r]]
            if hist:
                cold_valid.append({"user_id": s["user_id"], "history": [ids[r] for r in hist], "target": ids[rows[-2]]})

    for name, rows_, seqs in (("train-data", kept, train_seqs), ("eval-data", order, eval_seqs)):
        out = work / name
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "items.jsonl", (items[r] for r in rows_))
        write_jsonl(out / SEQUENCES_FILE, seqs)
        for m in MODALITIES:
            np.save(out / f"sid_{m}.npy", sids[m][rows_])

    never_dropped = np.setdiff1d(np.arange(n), missing_rows(seed, n, 100 * (1 - ITEM_TASK_SHARE)))
    (work / "item-task-items.txt").write_text(
        "".join(f"{ids[order[r]]}\n" for r in never_dropped if not is_held[order[r]])
    )
    new = work / "new-items"
    new.mkdir(parents=True, exist_ok=True)
    write_jsonl(new / "items.jsonl", ({"item_id": ids[r]} for r in held))
    moved = {}
    for m in MODALITIES:
        codes = sids[m][held]
        # an ID some training item already has moves to the first free last-level code under its prefix
        last = np.ones((len(held), int(sids[m].max()) + 1))
        last[np.arange(len(held)), codes[:, -1]] = 0
        resolved, report = resolve_collisions(codes, last, existing=sids[m][kept])
        np.save(new / f"sid_{m}.npy", resolved)
        moved[m] = report["n_moved"]
    write_jsonl(new / "cold_valid.jsonl", cold_valid)
    facts = {
        "items": n,
        "held_out": int(len(held)),
        "held_out_ids_moved": moved,
        "users": len(eval_seqs),
        "users_dropped": len(sequences) - len(eval_seqs),
        "cold_valid_users": len(cold_valid),
        "seed": seed,
    }
    (work / "protocol.json").write_text(json.dumps(facts, indent=1))
    return facts


def genrec_command(*args) -> None:
    """``genrec ARGS``, as typed, in this process."""
    from genrec.cli import main as genrec_main

    if genrec_main(list(args)):
        raise SystemExit(f"genrec {args[0]} failed")


def train(work: Path, seed: int, resume: bool, max_steps: int | None, history_dropout: float = 0.0) -> Path:
    """The generator on the 95% (cpu profile), then the held-out items added with ``genrec add-items``."""
    model, added = work / "model", work / "model-with-new-items"
    smoke = (
        dict(max_steps=max_steps, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
        if max_steps
        else {}
    )
    arm = Arm(
        "cpu",
        args=dict(
            seed=seed,
            tasks=TRAIN_TASKS,
            item_task_items=str(work / "item-task-items.txt"),
            history_dropout=history_dropout,
            **smoke,
        ),
    )
    train_arm(arm, work / "train-data", model, resume=resume)
    new = work / "new-items"
    genrec_command(
        *("add-items", "--model", model, "--items", new / "items.jsonl", "--sid-text", new / "sid_text.npy"),
        *("--sid-image", new / "sid_image.npy", "--out", added, "--overwrite"),
    )
    return added


def slice_metrics(rows, targets, cold, extras=None) -> dict:
    """Metrics over all users (with the beyond-accuracy extras), the cold and the warm slice."""
    out = {"all": ranking_metrics(rows, targets, KS, **(extras or {}))}
    for name, keep in (("cold", cold), ("warm", ~cold)):
        idx = np.flatnonzero(keep)
        if len(idx):  # a smoke run's few users may hold no cold (or no warm) one
            out[name] = ranking_metrics([rows[u] for u in idx], [targets[u] for u in idx], KS)
    return out


def content_rank(codes: dict[str, np.ndarray], histories, counts: np.ndarray, k: int = 10) -> list[list[int]]:
    """Items ranked by semantic-ID prefix overlap with the history: per modality and level, every item sharing
    a history item's prefix gains that item's weight (``CONTENT_DECAY`` per step back); history items left
    out, ties by training popularity. Reaches new items as easily as old ones: no training at all."""
    n = len(counts)
    members, group_of = [], []
    for c in codes.values():
        for level in range(c.shape[1]):
            present = (c[:, : level + 1] >= 0).all(1)
            _, inverse = np.unique(c[:, : level + 1], axis=0, return_inverse=True)
            inverse = np.where(present, inverse.ravel(), -1)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(inverse.max() + 2))
            members.append([order[bounds[g] : bounds[g + 1]] for g in range(inverse.max() + 1)])
            group_of.append(inverse)
    tie = counts / (counts.max() + 1) * 1e-3
    ranked = []
    for hist in histories:
        score = tie.copy()
        for age, h in enumerate(reversed(hist)):
            w = CONTENT_DECAY**age
            for groups, gid in zip(members, group_of):
                if gid[h] >= 0:
                    score[groups[gid[h]]] += w
        score[list(hist)] = -np.inf
        top = np.argpartition(-score, k)[:k] if n > k else np.arange(n)
        ranked.append(top[np.argsort(-score[top], kind="stable")].tolist())
    return ranked


def cold_start_study(work: Path, pipe: GenRecPipeline, data, args) -> dict:
    """Validation picks the share; the test split is ranked once and every setting re-fused from it."""
    n_trained = pipe.trained_rows
    cold_valid = [u for _, u in read_jsonl(work / "new-items" / "cold_valid.jsonl")]
    valid = data.splits["valid"].shuffle(seed=args.seed).select(range(min(VALID_WARM_USERS, len(data.splits["valid"]))))
    v_hist = [pipe.history_rows(u["history"]) for u in cold_valid] + list(valid["history"])
    v_target = [pipe.tokenizer.catalog.row(u["target"]) for u in cold_valid] + list(valid["target"])
    if args.max_users:
        v_hist, v_target = (
            v_hist[: args.max_users] + v_hist[-args.max_users :],
            v_target[: args.max_users] + v_target[-args.max_users :],
        )
    v_cold = np.asarray(v_target) >= n_trained
    decoded = pipe.rank(v_hist, modality="fused", k=10, num_beams=20, cold_start_share=0, progress=True)
    validation = {}
    for share in (0, *SHARES):
        res = pipe.recombine(decoded, v_hist, k=10, cold_start_share=share)
        m = slice_metrics(res.rows, v_target, v_cold)
        validation[str(share)] = {"cold_hr@10": m["cold"]["HR@10"], "warm_ndcg@10": m["warm"]["NDCG@10"]}
    base = validation["0"]["warm_ndcg@10"]
    allowed = [s for s in SHARES if validation[str(s)]["warm_ndcg@10"] >= (1 - MAX_WARM_LOSS) * base]
    chosen = max(allowed or [0], key=lambda s: (validation[str(s)]["cold_hr@10"] if s else -1, -s))
    logger.info("validation (share -> cold HR@10, warm NDCG@10): %s; chosen %s", validation, chosen)

    test = data.splits["test"]
    if args.max_users:
        test = test.select(range(min(args.max_users, len(test))))
    hist, target = list(test["history"]), list(test["target"])
    cold = np.asarray(target) >= n_trained
    extras = catalogue_extras(data)
    t0 = time.perf_counter()
    decoded = pipe.rank(hist, modality="fused", k=10, num_beams=20, cold_start_share=0, progress=True)
    rank_s = time.perf_counter() - t0
    models = {}
    for share in (0, *SHARES):
        res = pipe.recombine(decoded, hist, k=10, cold_start_share=share)
        models["genrec_no_coldstart" if share == 0 else f"genrec share={share:g}"] = slice_metrics(
            res.rows, target, cold, extras
        )
    models["popularity"] = slice_metrics(PopularityRecommender().fit(data).rank(hist), target, cold, extras)
    models["content (ID prefix overlap)"] = slice_metrics(
        content_rank(pipe.tokenizer.catalog.codes, hist, extras["item_counts"]), target, cold, extras
    )
    sdata = load_dataset_dir(work / "train-data", max_history=SASRecConfig.max_len)
    assert sdata.splits["test"]["user_id"][: len(target)] == list(test["user_id"]), "user order differs"
    sasrec = SASRecRecommender(SASRecConfig(seed=args.seed, **({"max_epochs": 1} if args.max_steps else {})))
    s_hist = sdata.splits["test"]["history"][: len(target)]  # the same users, SASRec's own history length (50)
    models["sasrec"] = slice_metrics(sasrec.fit(sdata).rank(s_hist), target, cold, extras)
    return {
        "validation": validation,
        "chosen_share": chosen,
        "models": models,
        "rank_s": round(rank_s, 1),
        "test_users": {"all": len(target), "cold": int(cold.sum()), "warm": int((~cold).sum())},
        "valid_users": {"cold": int(v_cold.sum()), "warm": int((~v_cold).sum())},
    }


def missing_modality_study(
    model: Path, hist, target, seed: int, cache: Path, ps=MISSING_P, drop=None, predict=True
) -> dict:
    """Per modality that goes missing and p: fused NDCG@10 (with imputation at each of ``POWERS``, and
    without) and each modality's own list's, when a seeded p% of the items (nested samples) lose that
    modality's IDs. No cold-start slots, so that fused and single-modality lists compare like for like.
    ``drop(pipe, modality, rows)`` takes the IDs away (default: ``GenRecPipeline.drop_ids``).
    ``predict``: also fused after the missing IDs are
    predicted from the other modality's (``fill_missing_ids``), with how often the prediction has the item's
    own first-level code and its own prefix (all levels but the last; a dropped item's full ID is held by no
    other item, so it cannot be predicted exactly). Each point is cached in ``cache`` (a folder)."""

    def drop_ids(pipe, modality, rows):
        pipe.drop_ids(modality, [pipe.tokenizer.item_ids[r] for r in rows])

    cache.mkdir(parents=True, exist_ok=True)
    columns = [f"fused_own_power{g:g}" for g in POWERS] + [f"fused_cross{w:g}" for w in CROSS_WEIGHTS]
    columns += ["fused_beams_only"]
    columns += [f"fused_minus_{m}_only_se" for m in MODALITIES]
    defaults = {
        "coverage_power": f"{HISTORY_COVERAGE_POWER:g}",
        "cross_modal_weight": CROSS_MODAL_WEIGHT,
        "rescore": True,
    }
    out = {}
    for lost in MODALITIES:
        for p in ps:
            tag = f"{'none' if p == 0 else lost}-{p}"
            done, lists = cache / f"{tag}.json", cache / f"{tag}-lists.json"  # the figures; the per-modality lists
            old = json.loads(done.read_text()) if done.is_file() else {}
            # not yet, or cached by an older version of this script or under other library defaults (`fused`)
            if not all(c in old for c in columns) or old.get("defaults") != defaults:
                pipe = GenRecPipeline.from_pretrained(model)
                n = len(pipe.tokenizer.item_ids)
                complete = pipe.tokenizer.catalog.codes[lost].copy()
                (drop or drop_ids)(pipe, lost, missing_rows(seed, n, p))
                cached = read_lists(lists)
                users = len(next(iter(cached[0].per_modality.values()))[0]) if cached else 0
                if users != len(hist):  # none yet, or from a --max-users run
                    res = pipe.rank(hist, modality="fused", k=10, num_beams=20, cold_start_share=0, progress=True)
                    alone = (
                        pipe.rank(
                            hist,
                            modality=lost,
                            k=10,
                            num_beams=20,
                            cold_start_share=0,
                            progress=True,
                            cross_modal_history=False,
                        )
                        if res.read
                        else None
                    )
                    cached = (res, alone)
                    write_lists(lists, cached)
                elif not getattr(cached[0], "rescored", None):  # lists cached before rescoring: rescore them
                    cached = (pipe.rescore(cached[0], hist, progress=True), cached[1])
                    write_lists(lists, cached)
                row = missing_point(pipe, *cached, lost, hist, target)
                # the predicted-ID route ranks a complete catalogue, without rescoring: the fusion's
                # missing-modality settings do not touch it, so an older cache's figures stand
                predicted = {k: v for k, v in old.items() if k.startswith("predict") or k == "fused_predicted_ids"}
                if predict and 0 < p <= 100 * (1 - ITEM_TASK_SHARE):
                    row.update(predicted or predicted_ids_point(pipe, lost, complete, hist, target))
                done.write_text(json.dumps({**row, "defaults": defaults}))
                logger.info("missing %s p=%d: %s", lost, p, row)
            figures = json.loads(done.read_text())
            out.setdefault(lost, {})[str(p)] = {k: v for k, v in figures.items() if k != "defaults"}
    return out


def missing_point(pipe: GenRecPipeline, res, alone, lost: str, hist, target) -> dict:
    """NDCG@10 of the default ranking ``res`` (fused with the library's defaults, without imputation, at each
    of ``CROSS_WEIGHTS``, without rescoring; each modality's list), and of the fusion of the beams' lists
    (no rescoring) at each of ``POWERS`` with the ``lost`` modality's list ``alone`` read from its own IDs only
    (None: ``res`` read them only)."""

    def ndcg(rows):
        return ranking_metrics([r[:10] for r in rows], target, (10,))["NDCG@10"]

    def fused(res, **settings):
        return ndcg(pipe.recombine(res, hist, k=10, cold_start_share=0, **settings).rows)

    default = pipe.recombine(res, hist, k=10, cold_start_share=0).rows
    beams = dataclasses.replace(res, rescored={})  # the lists as the beams left them, before rescoring
    row = {
        "fused": ndcg(default),
        "fused_no_imputation": fused(res, impute_missing=False),
        "fused_beams_only": fused(beams),
    }
    row.update({f"fused_cross{w:g}": fused(res, cross_modal_weight=w) for w in CROSS_WEIGHTS})
    per_user = user_ndcg(default, target)
    for m, (mrows, _) in res.per_modality.items():
        row[f"{m}_only"] = ndcg(mrows)
        gain = per_user - user_ndcg(mrows, target)  # standard error of the paired difference, over users
        row[f"fused_minus_{m}_only_se"] = float(gain.std(ddof=1) / np.sqrt(len(gain)))
    own = (
        beams
        if alone is None
        else dataclasses.replace(beams, per_modality={**res.per_modality, lost: alone.per_modality[lost]}, read={})
    )
    row[f"{lost}_only_own"] = ndcg(own.per_modality[lost][0])
    row.update({f"fused_own_power{g:g}": fused(own, coverage_power=g) for g in POWERS})
    return row


def user_ndcg(rows, target) -> np.ndarray:
    """Each user's NDCG@10 (one relevant item: 1 / log2(rank + 2), 0 when absent)."""
    ranks = target_ranks([r[:10] for r in rows], target)
    return np.where(ranks >= 0, 1 / np.log2(np.maximum(ranks, 0) + 2), 0.0)


def predicted_ids_point(pipe: GenRecPipeline, lost: str, complete: np.ndarray, hist, target) -> dict:
    """Fused NDCG@10 once the items lacking ``lost`` IDs get predicted ones, and how right the predictions are."""
    t0 = time.perf_counter()
    rows = [pipe.tokenizer.catalog.row(i) for i in pipe.fill_missing_ids(lost)]
    fill_s = time.perf_counter() - t0
    rows = [r for r in rows if complete[r, 0] >= 0]  # an item that never had the IDs has none to get right
    predicted, own = pipe.tokenizer.catalog.codes[lost][rows], complete[rows]
    # not rescored: the predicted IDs pile up (one text ID held by up to 834 items), and every item of a
    # list's beams would be rescored, about ten times the work of the other points
    res = pipe.rank(hist, modality="fused", k=10, num_beams=20, cold_start_share=0, progress=True, rescore=False)
    return {
        "fused_predicted_ids": ranking_metrics(res.rows, target, (10,))["NDCG@10"],
        "predicted_first_level_right": float((predicted[:, 0] == own[:, 0]).mean()),
        "predicted_prefix_right": float((predicted[:, :-1] == own[:, :-1]).all(1).mean()),
        "predicted_items": len(rows),
        "predict_s": round(fill_s, 1),
    }


def synthetic_missing(work: Path, seed: int, max_users: int | None, smoke: bool) -> dict:
    """The study on ``genrec demo``'s synthetic catalogue, where the items' embeddings turn NaN and the model's
    own quantizer decides which IDs are missing."""
    out = work / "synthetic"
    if not (out / "model" / "config.json").is_file():
        quick = ["--epochs", "0.05", "--quantizer-epochs", "5", "--n-items", "300", "--n-users", "300"] if smoke else []
        genrec_command("demo", "--out", out, "--seed", seed, "--overwrite", *quick)
    data = load_dataset_dir(out / "data")

    def drop_by_quantizer(pipe, modality, rows):
        emb = {m: data.embeddings[m].copy() for m in MODALITIES}
        emb[modality][rows] = np.nan
        lost = np.flatnonzero((pipe.quantizer.encode(emb)[modality] < 0).any(1))
        if set(lost.tolist()) != set(np.asarray(rows).tolist()):
            raise RuntimeError("the quantizer's missing rows are not the NaN rows")
        pipe.drop_ids(modality, [pipe.tokenizer.item_ids[r] for r in lost])

    test = data.splits["test"]
    if max_users:
        test = test.select(range(min(max_users, len(test))))
    return missing_modality_study(
        out / "model",
        list(test["history"]),
        list(test["target"]),
        seed,
        work / "missing-synthetic",
        drop=drop_by_quantizer,
        predict=False,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--run-dir", type=Path, default=REPO / "runs" / "coldstart")
    p.add_argument("--resume", action="store_true", help="reuse the trained models in --run-dir")
    p.add_argument("--max-steps", type=int, help="smoke run: train this many steps (no result files)")
    p.add_argument("--max-users", type=int, help="smoke run: rank only N users per slice (no result files)")
    p.add_argument(
        "--stage",
        choices=["train", "valid", "all"],
        default="all",
        help="stop after training, or after the missing-modality validation study (no result files)",
    )
    p.add_argument(
        "--history-dropout",
        type=float,
        default=0.0,
        help="train with this history dropout (GenRecTrainingArguments.history_dropout; default off)",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.run_dir
    if not args.resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    facts = split_catalogue(args.data, work, args.seed)
    logger.info("protocol: %s", json.dumps(facts))
    model = train(work, args.seed, args.resume, args.max_steps, args.history_dropout)
    if args.stage == "train":
        return
    data = load_dataset_dir(work / "eval-data")
    pipe = GenRecPipeline.from_pretrained(model)
    check_catalogue(pipe, data)
    valid, test = data.splits["valid"], data.splits["test"]  # every user: the powers differ by little
    if args.max_users:
        valid, test = (d.select(range(min(args.max_users, len(d)))) for d in (valid, test))
    missing_valid = missing_modality_study(
        model, list(valid["history"]), list(valid["target"]), args.seed, work / "missing-valid", ps=(0, 25, 50, 75)
    )
    if args.stage == "valid":
        return
    done = work / "cold_start_study.json"
    if not done.is_file():
        done.write_text(json.dumps(cold_start_study(work, pipe, data, args)))
    cold = json.loads(done.read_text())

    missing = missing_modality_study(
        model, list(test["history"]), list(test["target"]), args.seed, work / "missing-test"
    )
    synthetic = synthetic_missing(work, args.seed, args.max_users, bool(args.max_steps))
    write_report(args, facts, cold, missing_valid, missing, synthetic, len(valid), time.time() - started)


MISSING_ROUTES = (
    "fused",
    "text_only",
    "image_only",
    "fused_minus_text_only_se",
    "fused_minus_image_only_se",
    "fused_beams_only",
    "text_only_own",
    "image_only_own",
    "fused_no_imputation",
    "fused_predicted_ids",
    "predicted_first_level_right",
    "predicted_prefix_right",
)
DETAIL = ("coverage@10", "gini@10", "novelty@10", "popularity_percentile@10", "diversity@10")


def write_report(args, facts, cold, missing_valid, missing, synthetic, n_valid: int, total_s: float) -> None:
    chosen = f"genrec share={cold['chosen_share']:g}" if cold["chosen_share"] else "genrec_no_coldstart"
    models = cold["models"]
    rows = {
        name: {
            **{
                f"{part} {key}": m[part][key]
                for part in ("cold", "warm")
                for key in ("HR@10", "NDCG@10")
                if part in m  # a smoke run's slice may be empty
            },
            "all NDCG@10": m["all"]["NDCG@10"],
            **{k: m["all"].get(k) for k in DETAIL},
        }
        for name, m in models.items()
    }
    base = cold["validation"]["0"]["warm_ndcg@10"]
    vrows = {
        f"share {s}": {
            "cold HR@10": v["cold_hr@10"],
            "warm NDCG@10": v["warm_ndcg@10"],
            "warm loss": 1 - v["warm_ndcg@10"] / base if base else None,  # None: an untrained smoke model
        }
        for s, v in cold["validation"].items()
    }

    def missing_table(study):  # per direction: the routes, then the fusion settings (the JSON has every figure)
        out = []
        for lost, by_p in study.items():
            t = {f"{lost} missing, p={p}%": r for p, r in by_p.items()}
            routes = [c for c in MISSING_ROUTES if any(c in r for r in t.values())]
            rules = [c for c in next(iter(t.values())) if c.startswith(("fused_cross", "fused_own_power"))]
            out += [metrics_table(t, routes), "", metrics_table(t, rules), ""]
        return out

    # validation's choices: the best mean over its p > 0 points, of the powers (own-IDs route) and of the routes
    points = [r for by_p in missing_valid.values() for p, r in by_p.items() if p != "0"]
    power_means = {g: float(np.mean([r[f"fused_own_power{g:g}"] for r in points])) for g in POWERS}
    best_power = max(POWERS, key=lambda g: power_means[g])
    cross_means = {w: float(np.mean([r[f"fused_cross{w:g}"] for r in points])) for w in CROSS_WEIGHTS}
    best_cross = max(CROSS_WEIGHTS, key=lambda w: cross_means[w])
    every = [r for lost, by_p in missing_valid.items() for p, r in by_p.items() if p != "0" or lost == MODALITIES[0]]
    rescored_means = [float(np.mean([r[c] for r in every])) for c in ("fused", "fused_beams_only")]

    tables = [metrics_table(rows, list(next(iter(rows.values())))), ""]
    print(*tables, *missing_table(missing), sep="\n")
    train_min = json.loads((args.run_dir / "model" / "genrec_train_config.json").read_text())["wall_time_s"] / 60
    text = "\n".join(
        [
            "# New items and missing modalities on Amazon Instruments",
            "",
            f"Command: `python benchmarks/coldstart.py --seed {args.seed}"
            f"{f' --history-dropout {args.history_dropout:g}' if args.history_dropout else ''}` ({total_s / 60:.0f} min in this invocation, "
            f"which reuses what the run folder holds; the generator's training took {train_min:.0f} min). Machine: {describe('cpu')}. Seed {args.seed}, commit {git_commit()}.",
            "",
            "## Cold start",
            "",
            f"Protocol: {facts['held_out']} of {facts['items']} items (5%, seeded) held out: dropped from every training "
            "and validation sequence and from every history, kept only as test targets; "
            f"{facts['users_dropped']} users fell under 3 interactions and left the split. The generator (cpu profile: "
            "2+2-layer T5, seqrec + seqimage + implicit loss + MACRec's seqitem2image and seqimage2item, its 3 epochs, "
            "best validation loss checkpoint; plus "
            f"MACRec's item2image and image2item tasks on the {ITEM_TASK_SHARE:.0%} of the items no missing-modality "
            "sample up to 50% touches, see below) never saw "
            "a held-out item; they join with `genrec add-items --sid-text --sid-image` (the released IDs; "
            f"{facts['held_out_ids_moved']} of them had an ID a training item already had and moved to the first free "
            "last-level code under its prefix). Test: leave-one-out over the whole catalogue, history items not excluded "
            f"(the papers' protocol), {cold['test_users']['all']} users, {cold['test_users']['cold']} with a held-out "
            f"target (cold slice). Generator ranking: {cold['rank_s']} s for 20 beams per modality, rescored and fused.",
            "",
            "Cold-start slots (`GenRecPipeline.rank(cold_start_share=s)`): the last round(10 s) places of each top-10 go "
            "to the added items sharing the longest ID prefix with a generated beam or a history item. SASRec was "
            "trained on the same 95% and has no embedding for an unseen item: it cannot rank one (0 on the cold "
            "slice by construction). Content: items scored by the semantic-ID prefixes (both modalities, every "
            f"level) they share with the history items (weight {CONTENT_DECAY} per step back), history items left out, "
            "ties by popularity; no training.",
            "",
            f"### Choosing the share on validation ({cold['valid_users']['cold']} users whose validation target is a "
            f"held-out item, {cold['valid_users']['warm']} sampled others; the largest cold HR@10 with at most "
            f"{MAX_WARM_LOSS:.0%} warm NDCG@10 loss) -> **{cold['chosen_share']}**",
            "",
            metrics_table(vrows, ["cold HR@10", "warm NDCG@10", "warm loss"]),
            "",
            "### Test (ranked once; every share re-fused from the same beams)",
            "",
            *tables,
            "## Missing modality",
            "",
            "The same model and complete catalogue; at test time a seeded p% of the items (nested samples) lose their "
            "image IDs, or their text IDs. Such items leave that modality's constraints and are found by the other "
            "modality's beams. `fused`: the library's default: every item either list proposed is scored under each "
            "modality it has IDs in (`rescore`: teacher forcing, the score its beam search would have given it), so "
            "the fusion compares every candidate on both lists' scores; `fused_beams_only`: the same fusion of the "
            "lists as the beams left them (the default before rescoring). A modality's list reads a history that lacks some of "
            "its IDs in the other modality's IDs, through the generator's cross-modal next-item task (seqitem2image "
            "for the image list, seqimage2item for the text list; `cross_modal_history`); an item lacking a modality is "
            "fused as if that list had found it with its own score (`impute_missing`), and each list is weighted by the "
            f"share of the history items it could read, to the power {HISTORY_COVERAGE_POWER:g} (here 1 for every list: "
            f"the other modality's IDs are complete) times {CROSS_MODAL_WEIGHT:g} (`cross_modal_weight`; `fused_crossW`: "
            "other weights, 0 = the list left out). `*_own`: the list that lost IDs reads its own IDs only "
            "(`cross_modal_history=False`, the route of a generator without the cross-modal tasks), and "
            "`fused_own_powerG` (beams' lists, no rescoring) weighs it by the share of the history it could read to the power G (inf: a list "
            "counts only for users whose whole history has its IDs; 0 = imputation alone); `fused_no_imputation`: "
            "MACRec's rule as it is (an item in one list never gets the +1 of items in both); `*_only`: one modality's "
            "list (the default route); `fused_minus_M_only_se`: the standard error, over users, of the per-user "
            "difference between fused and M's list (a difference within about two of them is a tie for one seed). "
            "No cold-start slots here, so "
            "that the fused and single-modality lists compare like for like. `fused_predicted_ids` (p <= 50%): the "
            "missing IDs are first predicted from the item's other modality by the generator's own item2image / "
            "image2item task (`GenRecPipeline.fill_missing_ids`: constrained beam search over the IDs catalogue items "
            "hold, so an item takes the ID of the item the model finds most alike), then ranked as a complete "
            "catalogue. The generator learned those tasks only on items outside the 50% sample, so no predicted item's "
            "(text, image) pair was an item-task example (the sequence tasks and the implicit loss did see both of "
            "its modalities: the IDs go missing at test time only); `predicted_first_level_right` / `predicted_prefix_right`: share "
            "of the predicted IDs with the item's own first-level code / own prefix (all levels but the last).",
            "",
            f"### Validation (all {n_valid} validation users), choosing the route and the power",
            "",
            "Rescoring (the default) against the beams' lists alone, mean fused NDCG@10 over every point: "
            f"{rescored_means[0]:.5f} against {rescored_means[1]:.5f}. "
            "Mean fused NDCG@10 over the p > 0 points, default route (rescored), per weight of the list read through "
            "the cross-modal task: "
            + ", ".join(f"{w:g}: {v:.5f}" for w, v in cross_means.items())
            + f" -> best {best_cross:g}; the library's default (`fused`) is {CROSS_MODAL_WEIGHT:g}. Own-IDs route, per "
            "power: "
            + ", ".join(f"{g:g}: {v:.4f}" for g, v in power_means.items())
            + f" -> best {best_power:g}; the library's default is {HISTORY_COVERAGE_POWER:g}. "
            f"{len(POWERS) + len(CROSS_WEIGHTS) + 1} fusion rules tried in all (the weights, the powers, no "
            "imputation).",
            "",
            *missing_table(missing_valid),
            "### Test, Instruments",
            "",
            *missing_table(missing),
            "### Synthetic catalogue with embeddings (`genrec demo`, seed "
            f"{args.seed}): the items' embeddings turn NaN and the model's quantizer gives them no ID",
            "",
            *missing_table(synthetic),
        ]
    )

    def pick(name, slice_):
        return {"hr@10": models[name][slice_]["HR@10"], "ndcg@10": models[name][slice_]["NDCG@10"]}

    payload = {
        "protocol": facts,
        "chosen_share": cold["chosen_share"],
        "validation": cold["validation"],
        **{
            slice_: {"genrec": pick(chosen, slice_), **{n: pick(n, slice_) for n in models}}
            for slice_ in ("cold", "warm")
            if all(slice_ in m for m in models.values())  # a smoke run's few users may hold no cold one
        },
        "all": {n: {k.lower(): v for k, v in m["all"].items()} for n, m in models.items()},
        "missing_image": {p: r["fused"] for p, r in missing["image"].items()},
        "missing_text": {p: r["fused"] for p, r in missing["text"].items()},
        "missing_detail": missing,
        "missing_validation": missing_valid,
        "synthetic_missing": synthetic,
        "coverage_power": {
            "default": f"{HISTORY_COVERAGE_POWER:g}",
            "validation_best": f"{best_power:g}",
            "validation_means": {f"{g:g}": v for g, v in power_means.items()},
        },
        "rescore": {
            "default": True,
            "validation_mean_fused": rescored_means[0],
            "validation_mean_beams_only": rescored_means[1],
        },
        "cross_modal_weight": {
            "default": CROSS_MODAL_WEIGHT,
            "validation_best": best_cross,
            "validation_means": {f"{w:g}": v for w, v in cross_means.items()},
        },
    }
    out = results_path("coldstart")
    write_results(out, text, payload, smoke=bool(args.max_users or args.max_steps))


if __name__ == "__main__":
    main()
