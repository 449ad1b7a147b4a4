"""Quantizer training: ``QuantizerTrainer`` and ``train_quantizer`` (``genrec quantize``).

A plain loop rather than ``transformers.Trainer``: the quantizer needs k-means codebook
initialisation, dead-code restarts (per epoch, and every ``RESTART_EVERY_STEPS`` in a long one) and a
best checkpoint chosen *per modality* by the collision rate over the whole catalogue, then the loss (as
MACRec keeps best_{text,image}_collision_model); none of these fit Trainer's callbacks without fighting
it. Full-catalogue passes are cheap (6k items).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GenRecError
from ..quantizer import CrossModalRQVAE, CrossModalRQVAEConfig, collision_rate
from ..quantizer.kmeans import ASSIGN_CHUNK, id_prefix_labels, pseudo_labels, sample_rows
from ..utils import atomic_write_file, set_seed
from .quantizer_config import QuantizerTrainingArguments

# Dead codes are restarted after every epoch and, within a long epoch, every this many steps: counts over a
# whole ~1,000-step epoch (a million items) keep alive the codes used only in its first steps, before the
# encoder moved away from the k-means start; with one epoch the codebook then collapses (measured on 200k
# synthetic items: 6 of 256 first-level codes in use). Epochs up to this length behave as before.
RESTART_EVERY_STEPS = 100

logger = logging.getLogger("genrec.quantize")

CHECKPOINT_FILE = "quantizer_checkpoint.pt"


class QuantizerTrainer:
    """Trains a ``CrossModalRQVAE`` on per-modality item embeddings and writes the artifact.

    ``embeddings``: modality -> float [n_items, d] with all-NaN rows for items lacking the modality.
    ``semantic_ids``: modality -> int [n_items, levels] for the config's ``id_modalities`` (IDs only, a
    row of -1 where missing); their prefixes are those modalities' contrastive pseudo-labels.
    """

    def __init__(
        self,
        model: CrossModalRQVAE,
        embeddings: dict[str, np.ndarray],
        args: QuantizerTrainingArguments,
        semantic_ids: dict[str, np.ndarray] | None = None,
    ):
        self.model, self.args = model, args
        self.config = model.config
        missing = [m for m in self.config.modalities if m not in embeddings]
        if missing:
            raise GenRecError(f"no embeddings for modalities {missing} of the quantizer config")
        self.embeddings = {m: np.asarray(embeddings[m], dtype=np.float32) for m in self.config.modalities}
        sizes = {len(x) for x in self.embeddings.values()}
        if len(sizes) != 1:
            raise GenRecError(
                f"embeddings disagree on the number of items: { {m: len(x) for m, x in self.embeddings.items()} }"
            )
        self.n_items = sizes.pop()
        semantic_ids = semantic_ids or {}
        missing = [m for m in self.config.id_modalities if m not in semantic_ids]
        if missing:
            raise GenRecError(f"no semantic IDs for the IDs-only modalities {missing} of the quantizer config")
        self.semantic_ids = {m: np.asarray(semantic_ids[m], dtype=np.int64) for m in self.config.id_modalities}
        wrong = {m: len(v) for m, v in self.semantic_ids.items() if len(v) != self.n_items}
        if wrong:
            raise GenRecError(f"semantic IDs of {wrong} rows, but the embeddings have {self.n_items} items")
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.history: list[dict] = []

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """Short hash of the embeddings trained on (a resumed checkpoint must come from the same ones)."""
        h = hashlib.sha256()
        for m in sorted(self.embeddings):
            h.update(f"{m}:{self.embeddings[m].shape}".encode())
            h.update(np.ascontiguousarray(self.embeddings[m]).tobytes())
        for m in sorted(self.semantic_ids):
            h.update(f"ids:{m}".encode())
            h.update(np.ascontiguousarray(self.semantic_ids[m]).tobytes())
        return h.hexdigest()[:16]

    # ---- training -------------------------------------------------------------------------------
    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        perm = np.random.default_rng(self.args.seed).permutation(self.n_items)
        n_val = int(round(self.args.valid_fraction * self.n_items))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _evaluate(self, val_idx: np.ndarray) -> dict[str, tuple[float, float]]:
        """Per modality: (collision rate over the catalogue, held-out reconstruction MSE)."""
        out = {}
        for m, x in self.embeddings.items():
            r = self.model.quantize_catalogue(m, x)
            mse = r["recon_mse"][val_idx] if len(val_idx) else r["recon_mse"]
            out[m] = (collision_rate(r["codes"]), float(np.nanmean(mse)) if np.isfinite(mse).any() else float("nan"))
        return out

    def train(self) -> CrossModalRQVAE:
        args, cfg, model = self.args, self.config, self.model
        set_seed(args.seed)
        model.to(self.device)
        ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else None
        train_idx, val_idx = self._split()
        x = {m: torch.from_numpy(e).to(self.device) for m, e in self.embeddings.items()}
        labels = self._pseudo_labels(ckpt_dir)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
        gen = torch.Generator().manual_seed(args.seed)
        best: dict[str, dict] = {}
        start = 0
        ckpt = ckpt_dir / CHECKPOINT_FILE if ckpt_dir else None
        if args.resume and ckpt is not None and ckpt.is_file():
            start, best = self._resume(ckpt, optimizer, gen)
        elif args.resume:
            logger.warning("--resume: no checkpoint in %s, starting from scratch", ckpt_dir)
        if cfg.kmeans_init:
            for m, net in model.rqvae.items():
                if not net.initialized:
                    net.init_codebooks(self._latents(m, train_idx), args.seed, cfg.kmeans_iters)

        bar = tqdm(
            range(start, args.epochs), desc="quantize", disable=not args.progress, initial=start, total=args.epochs
        )
        for epoch in bar:
            record = self._train_epoch(epoch, train_idx, x, labels, optimizer, gen)
            if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
                self._evaluate_epoch(epoch, val_idx, record, best, bar)
            self.history.append(record)
            if ckpt is not None and ((epoch + 1) % args.save_every == 0 or epoch + 1 == args.epochs):
                self._save_checkpoint(ckpt, epoch, optimizer, gen, best)
        for m, b in best.items():
            model.rqvae[m].load_state_dict(b["state"])
        self.best = {m: {k: v for k, v in b.items() if k != "state"} for m, b in best.items()}
        self.pseudo_labels = {m: v.cpu().numpy() for m, v in labels.items()} if labels else None
        return model

    def _resume(self, ckpt: Path, optimizer, gen: torch.Generator) -> tuple[int, dict[str, dict]]:
        """Continue from a checkpoint of this config and these embeddings; returns (epochs done, best so far)."""
        try:  # tensors and plain data only: a crafted checkpoint cannot run code
            state = torch.load(ckpt, map_location=self.device, weights_only=True)
        except Exception as e:  # noqa: BLE001  (pickle refusals, truncation: all mean "not ours")
            raise GenRecError(
                f"{ckpt}: not a readable genrec quantizer checkpoint ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); delete it or resume elsewhere"
            ) from e
        if state["config"] != _shape_keys(self.config):
            raise GenRecError(f"{ckpt}: checkpoint was trained with {state['config']}, not {_shape_keys(self.config)}")
        if state.get("data", self.data_fingerprint) != self.data_fingerprint:
            raise GenRecError(
                f"{ckpt}: checkpoint was trained on other embeddings (fingerprint {state['data']}, "
                f"these are {self.data_fingerprint}); resume on the same dataset or start afresh"
            )
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        self.history = state["history"]
        logger.info("resumed from %s at epoch %d", ckpt, state["epoch"])
        return state["epoch"], state["best"]

    def _train_epoch(
        self,
        epoch: int,
        train_idx: np.ndarray,
        x: dict[str, torch.Tensor],
        labels: dict[str, torch.Tensor] | None,
        optimizer,
        gen: torch.Generator,
    ) -> dict:
        """One pass over the training items in seeded order, restarting dead codes at the end of every window
        of ``RESTART_EVERY_STEPS`` steps and of the epoch; returns its record (mean losses, codes restarted)."""
        args, cfg, model = self.args, self.config, self.model
        model.train()
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        counts = {m: torch.zeros(cfg.num_levels, cfg.codebook_size, dtype=torch.long) for m in cfg.modalities}
        sums, steps, restarted = {}, 0, 0
        batches = order.split(args.batch_size)
        # a long epoch (a million items: ~1,000 steps, minutes on a CPU) shows its own progress
        steps_bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}",
            unit="step",
            leave=False,
            disable=not args.progress or len(batches) < RESTART_EVERY_STEPS,
        )
        for b in steps_bar:
            b = b.to(self.device)
            out = model({m: v[b] for m, v in x.items()}, {m: v[b] for m, v in labels.items()} if labels else None)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            steps += 1
            for k in ("loss", "recon_loss", "vq_loss", "contrastive_loss", "alignment_loss"):
                sums[k] = sums.get(k, 0.0) + getattr(out, k).item()
            for m, c in out.codes.items():
                c = c[(c >= 0).all(-1)].cpu()
                for lv in range(cfg.num_levels):
                    counts[m][lv] += torch.bincount(c[:, lv], minlength=cfg.codebook_size)
            if cfg.dead_code_restart and (steps % RESTART_EVERY_STEPS == 0 or steps == len(batches)):
                restarted += self._restart_dead_codes(train_idx, counts, gen)
                for c in counts.values():
                    c.zero_()
        record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if cfg.dead_code_restart:
            record["dead_codes"] = restarted
        return record

    def _evaluate_epoch(self, epoch: int, val_idx: np.ndarray, record: dict, best: dict[str, dict], bar) -> None:
        """Add validation figures to ``record``; keep each modality's best state (fewest collisions, then recon)."""
        for m, (coll, val) in self._evaluate(val_idx).items():
            record[f"{m}_collision_rate"], record[f"{m}_valid_recon"] = coll, val
            if m not in best or (coll, val) < (best[m]["collision_rate"], best[m]["valid_recon"]):
                best[m] = {
                    "collision_rate": coll,
                    "valid_recon": val,
                    "epoch": epoch + 1,
                    "state": copy.deepcopy(self.model.rqvae[m].state_dict()),
                }
        bar.set_postfix(
            loss=f"{record['loss']:.4f}",
            **{f"coll_{m}": f"{record[f'{m}_collision_rate']:.3f}" for m in self.config.modalities},
        )
        logger.debug("epoch %d: %s", epoch + 1, record)

    def _save_checkpoint(self, ckpt: Path, epoch: int, optimizer, gen: torch.Generator, best: dict[str, dict]) -> None:
        """Everything ``_resume`` needs after ``epoch``, written atomically (a kill never leaves half a file)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "best": best,
            "generator": gen.get_state(),
            "history": self.history,
            "config": _shape_keys(self.config),
            "data": self.data_fingerprint,
        }
        atomic_write_file(ckpt, lambda fh: torch.save(state, fh))

    def _pseudo_labels(self, cache_dir: Path | None) -> dict[str, torch.Tensor] | None:
        """K-means clusters of the embedded modalities (when two or more) and ID prefixes of the IDs-only ones."""
        cfg = self.config
        partners = cfg.contrastive_partners
        if not partners:
            return None
        embedded = [m for m in partners if m in self.embeddings]
        labels = (
            pseudo_labels({m: self.embeddings[m] for m in embedded}, cfg.n_clusters, self.args.seed, cache_dir)
            if embedded
            else {}
        )
        labels.update({m: id_prefix_labels(self.semantic_ids[m], cfg.id_label_levels) for m in cfg.id_modalities})
        return {m: torch.from_numpy(v).to(self.device) for m, v in labels.items()}

    @torch.no_grad()
    def _latents(self, modality: str, train_idx: np.ndarray) -> torch.Tensor:
        """Encoder outputs of (a seeded sample of at most ``MAX_FIT_ROWS`` of) the training items that have
        ``modality``: what k-means initialisation and dead-code restarts draw on, in bounded memory."""
        x = self.embeddings[modality]
        rows = train_idx[~np.isnan(x[train_idx]).any(axis=1)]
        rows = rows[sample_rows(len(rows), self.args.seed)]
        net = self.model.rqvae[modality]
        return torch.cat(
            [
                net.encoder(torch.from_numpy(x[chunk]).to(self.device))
                for chunk in np.array_split(rows, max(1, -(-len(rows) // ASSIGN_CHUNK)))
            ]
        )

    @torch.no_grad()
    def _restart_dead_codes(self, train_idx, counts, gen) -> int:
        dead = 0
        for m, net in self.model.rqvae.items():
            q = net.quantize(self._latents(m, train_idx))
            dead += net.restart_dead_codes(counts[m], [r.cpu() for r in q.residuals], gen)
        return dead

    # ---- export ---------------------------------------------------------------------------------
    def export(self, out: str | os.PathLike, item_ids: list | None = None, overwrite: bool = False) -> dict:
        """Write the artifact (``genrec.trainers.quantizer_export``); returns its metrics."""
        from .quantizer_export import export_quantizer

        return export_quantizer(self, out, item_ids, overwrite)


def _shape_keys(cfg: CrossModalRQVAEConfig) -> dict:
    """The config fields a checkpoint must agree on to be resumed."""
    keys = ("modalities", "input_dims", "num_levels", "codebook_size", "latent_dim", "hidden_dims")
    return {k: getattr(cfg, k) for k in keys}
