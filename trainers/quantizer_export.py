"""The quantizer artifact: model, per-modality sid files (collisions resolved), metrics, collision report,
item -> code table, pseudo-labels and training log, written atomically and only from finite weights."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict

import numpy as np

from ..data.loading import ITEM_CODES_FILE, SID_FILES
from ..errors import GenRecError
from ..quantizer import collision_rate, resolve_collisions
from ..quantizer.kmeans import PSEUDO_LABELS_FILE
from ..quantizer.metrics import cross_modal_agreement, entropy, utilization
from ..utils import atomic_output_dir, no_hf_progress_bars, nonfinite_parameters

logger = logging.getLogger("genrec.quantize")

METRICS_FILE = "quantizer_metrics.json"
COLLISION_REPORT_FILE = "collision_report.json"
TRAIN_LOG_FILE = "quantizer_train_log.json"


def sid_file(modality: str) -> str:
    return SID_FILES.get(modality, f"sid_{modality}.npy")


def export_quantizer(trainer, out: str | os.PathLike, item_ids: list | None = None, overwrite: bool = False) -> dict:
    """Write ``trainer``'s quantizer artifact to ``out`` atomically; returns its metrics. A diverged quantizer
    (NaN or inf weights) writes nothing: its codebooks and IDs would be arbitrary."""
    cfg = trainer.config
    bad = nonfinite_parameters(trainer.model)
    if bad:
        raise GenRecError(
            f"quantizer training diverged: {len(bad)} weight tensors hold NaN or inf (first: "
            f"{bad[0]}); lower --lr (was {trainer.args.learning_rate}) or the loss weights "
            f"(lambda_con {cfg.lambda_con}); nothing was written to {out}"
        )
    item_ids = list(item_ids) if item_ids is not None else list(range(trainer.n_items))
    ids, metrics, report = catalogue_ids(trainer)
    best = getattr(trainer, "best", {})
    with atomic_output_dir(out, "quantizer", overwrite=overwrite) as tmp:
        with no_hf_progress_bars():
            trainer.model.save_pretrained(tmp)
        for m, v in ids.items():
            np.save(tmp / sid_file(m), v)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (tmp / COLLISION_REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
        with open(tmp / ITEM_CODES_FILE, "w", encoding="utf-8") as fh:
            for i, item in enumerate(item_ids):
                fh.write(json.dumps({"item_id": item, **{m: v[i].tolist() for m, v in ids.items()}}) + "\n")
        log = {"args": asdict(trainer.args), "best": best, "history": trainer.history}
        (tmp / TRAIN_LOG_FILE).write_text(json.dumps(log, indent=2), encoding="utf-8")
        if getattr(trainer, "pseudo_labels", None):
            np.savez(tmp / PSEUDO_LABELS_FILE, **trainer.pseudo_labels)
    return metrics


def catalogue_ids(trainer) -> tuple[dict, dict, dict]:
    """Every item's collision-free ID per modality, with the metrics and the collision report of each."""
    cfg = trainer.config
    metrics, report, ids = {}, {}, {}
    for m, x in trainer.embeddings.items():
        r = trainer.model.quantize_catalogue(m, x)
        ids[m], rep = resolve_collisions(r["codes"], r["last_dists"])
        rep = {
            "collision_rate_before": collision_rate(r["codes"]),
            "collision_rate_after": collision_rate(ids[m]),
            **rep,
        }
        if rep["extra_level_appended"]:
            logger.warning(
                "%s: %d item(s) under full prefixes; appended a disambiguation level (%d levels)",
                m,
                rep["n_prefix_full"],
                ids[m].shape[1],
            )
        report[m] = rep
        metrics[m] = {
            "n_items": rep["n_items"],
            "n_missing": rep["n_missing"],
            "levels": int(ids[m].shape[1]),
            "extra_level": rep["extra_level_appended"],
            "recon_loss": float(np.nanmean(r["recon_mse"])) if rep["n_items"] else None,
            "collision_rate_before": rep["collision_rate_before"],
            "collision_rate_after": rep["collision_rate_after"],
            "utilization": utilization(r["codes"], cfg.codebook_size),
            "entropy": entropy(r["codes"], cfg.codebook_size),
            "best_epoch": getattr(trainer, "best", {}).get(m, {}).get("epoch"),
        }
    metrics["cross_modal_agreement"] = cross_modal_agreement({**ids, **trainer.semantic_ids})
    no_modality = np.all([(v < 0).all(axis=1) for v in ids.values()], axis=0)
    metrics["n_items_without_any_modality"] = report["n_items_without_any_modality"] = int(no_modality.sum())
    return ids, metrics, report
