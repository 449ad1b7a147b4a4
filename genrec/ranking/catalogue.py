"""Catalogue edits without retraining: new items (cold start), IDs dropped or predicted for items that lack a
modality. A mixin of ``GenRecPipeline``: each edit changes the tokenizer's catalogue, drops the decoding caches
built from it, and keeps the training record's fingerprint truthful so the saved folder loads again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import ITEM_TASKS, TASK_MODALITIES
from ..errors import GenRecError
from ..generation import constrained_beam_search
from .config import DEFAULT_BATCH_SIZE, DEFAULT_NUM_BEAMS
from .decode import constraint


class CatalogueEdits:
    """``add_items``, ``drop_ids``, ``predict_ids`` and ``fill_missing_ids`` of ``GenRecPipeline``."""

    @property
    def trained_rows(self) -> int:
        """Catalogue rows the generator was trained on; rows past it were added later (``add_items``)."""
        return self.train_config.get("fingerprint", {}).get(
            "trained_rows", len(self.item_prior.get("counts") or []) or len(self.tokenizer.catalog)
        )

    def add_items(
        self,
        item_ids: Sequence[Any],
        embeddings: dict[str, np.ndarray] | None = None,
        semantic_ids: dict[str, np.ndarray] | None = None,
        display: Sequence[dict] | None = None,
    ) -> None:
        """Put new items in the catalogue and the decoding constraints without changing any weight.

        ``embeddings`` (modality -> [n_new, d], NaN rows = the item lacks it): the model's quantizer gives
        them IDs, unique against the catalogue and among themselves. Or ``semantic_ids`` (modality ->
        [n_new, levels], a row of -1 = lacking it): checked against the codebooks and the IDs already
        taken. Every modality of the catalogue must be given; nothing changes when anything is refused.
        ``display``: the new items' title/brand/categories (their ``items.jsonl`` rows will do).
        """
        item_ids = list(item_ids)
        if (embeddings is None) == (semantic_ids is None):
            raise GenRecError("add_items: give either embeddings or semantic_ids")
        catalog = self.tokenizer.catalog
        given = embeddings if embeddings is not None else semantic_ids
        missing = [m for m in catalog.modalities if m not in given]
        unknown = [m for m in given if m not in catalog.modalities]
        if missing or unknown:
            raise GenRecError(
                f"add_items: the catalogue has modalities {catalog.modalities}; "
                + (f"missing {missing}" if missing else f"unknown {unknown}")
            )
        if embeddings is not None:
            if self.quantizer_path is None:
                raise GenRecError(
                    "add_items: this model folder has no quantizer to encode embeddings with; pass semantic IDs instead"
                )
            self._check_quantizer_ids()
            try:
                codes = self.quantizer.encode(
                    {m: np.asarray(embeddings[m], dtype=np.float32) for m in given},
                    existing={m: catalog.codes[m] for m in given},
                )
            except ValueError as e:
                raise GenRecError(f"add_items: {e}") from None
        else:
            codes = {m: np.asarray(v, dtype=np.int64) for m, v in semantic_ids.items()}
            for m, new in codes.items():
                if new.ndim != 2 or len(new) != len(item_ids):
                    raise GenRecError(f"add_items: {m} IDs have shape {new.shape}, expected [{len(item_ids)}, levels]")
        trained = self.trained_rows
        # validates ids, duplicates, levels, codebook ranges and IDs already taken; changes nothing if refused
        self.tokenizer.add_items(item_ids, codes, display)
        fingerprint = self.train_config.get("fingerprint")
        if fingerprint is not None:
            fingerprint.setdefault("trained_rows", trained)
        self._ids_changed()

    def drop_ids(self, modality: str, item_ids: Sequence[Any]) -> None:
        """The items lose their ``modality`` IDs (their image went missing, say): no weight changes; they
        leave that modality's beams and are ranked through the other modalities (see ``impute_missing``)."""
        self.tokenizer.catalog.drop_ids(modality, self.tokenizer.catalog.rows(item_ids))
        self._trained_ids_edited()

    def _ids_changed(self) -> None:
        """The catalogue's IDs changed: the decoding constraints and popularity penalties built from them go."""
        self._constraints.clear()
        self._penalties.clear()

    def _trained_ids_edited(self) -> None:
        """IDs were changed on purpose (``drop_ids``, ``fill_missing_ids``): when that touched items the
        generator trained on, the training record's catalogue fingerprint follows, so the saved folder loads
        again (the weights are the same); ``ids_edited`` keeps the fingerprint trained on."""
        self._ids_changed()
        fingerprint = self.train_config.get("fingerprint")
        if fingerprint is None:
            return
        now = self.tokenizer.catalog.fingerprint(fingerprint.get("trained_rows"))
        if now != fingerprint["catalogue"]:
            fingerprint.setdefault("ids_edited", {"trained_catalogue": fingerprint["catalogue"]})
            fingerprint["catalogue"] = now

    def _item_task(self, modality: str) -> tuple[str, str]:
        """The item task that predicts ``modality`` IDs, and the modality it reads."""
        task = next((t for t in ITEM_TASKS if TASK_MODALITIES[t][1] == modality), None)
        if task is None or not set(TASK_MODALITIES[task]) <= set(self.tokenizer.modalities):
            raise GenRecError(
                f"no item task predicts {modality!r} IDs from this catalogue's modalities {self.tokenizer.modalities}"
            )
        return task, TASK_MODALITIES[task][0]

    @torch.no_grad()
    def predict_ids(
        self,
        modality: str,
        rows: Sequence[int],
        num_beams: int = DEFAULT_NUM_BEAMS,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """``modality`` IDs [len(rows), levels] for catalogue ``rows``, read from their other modality's IDs
        by the generator's item-translation task (``item2image`` / ``image2item``, MACRec's explicit
        alignment): the best of a beam search over the IDs catalogue items hold in ``modality``, so every
        prediction is the ID of the item the model finds most alike. Needs a model trained on that task."""
        task, source = self._item_task(modality)
        trained = self.train_config.get("tasks")
        if trained is not None and task not in trained:
            raise GenRecError(
                f"predicting {modality} IDs needs a generator trained on {task!r}; this one learned "
                f"{trained} (train with --tasks ...,{task})"
            )
        catalog = self.tokenizer.catalog
        rows = [int(r) for r in rows]
        present = catalog.has_ids(source)
        lacking = [r for r in rows if not present[r]]
        if lacking:
            raise GenRecError(f"rows {lacking[:5]} have no {source} IDs to predict {modality} IDs from")
        if not catalog.has_ids(modality).any():
            raise GenRecError(f"no catalogue item has {modality} IDs: there is no ID to predict")
        trie = constraint(self, (modality,))
        out = np.empty((len(rows), self.tokenizer.num_levels(modality)), dtype=np.int64)
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            batch = self.tokenizer.pad(
                [{"input_ids": self.tokenizer.encode_task_input(task, [r], source)} for r in part], return_tensors="pt"
            )
            found = constrained_beam_search(
                self.model,
                batch["input_ids"].to(self.model.device),
                batch["attention_mask"].to(self.model.device),
                trie,
                num_beams=min(num_beams, trie.n_leaves),
                num_return_sequences=1,
            )
            for j, leaf in enumerate(found.leaves[:, 0].tolist()):
                if leaf < 0:  # every continuation scored -inf (a model that never learned the task, say)
                    raise GenRecError(f"row {part[j]}: the generator found no {modality} ID")
                out[start + j] = catalog.codes[modality][trie.rows_of_leaf(leaf)[0]]
        return out

    def fill_missing_ids(self, modality: str, num_beams: int = DEFAULT_NUM_BEAMS) -> list[Any]:
        """Items lacking ``modality`` IDs (but not the other modality's) get predicted ones (``predict_ids``):
        their history entries feed that modality's task again and its beams can reach them. Returns the
        item ids filled. No weight changes; the IDs may be shared with the items they resemble."""
        source = self._item_task(modality)[1]
        catalog = self.tokenizer.catalog
        rows = np.flatnonzero(~catalog.has_ids(modality) & catalog.has_ids(source)).tolist()
        if rows:
            catalog.set_ids(modality, rows, self.predict_ids(modality, rows, num_beams))
            self._trained_ids_edited()
        return [self.tokenizer.item_ids[r] for r in rows]

    def _check_quantizer_ids(self) -> None:
        """The saved quantizer must be the one the catalogue's IDs came from (its ``sid_*.npy`` are the trained
        rows' IDs): another quantizer of the same shape would encode new items into codes that mean other
        items to the generator."""
        from ..data.loading import SID_FILES

        catalog = self.tokenizer.catalog
        for m, name in SID_FILES.items():
            path = Path(self.quantizer_path) / name
            if m not in catalog.codes or not path.is_file():
                continue
            ids = np.load(path, allow_pickle=False)
            if ids.shape != (self.trained_rows, catalog.levels(m)) or not np.array_equal(
                ids, catalog.codes[m][: len(ids)]
            ):
                raise GenRecError(
                    f"add_items: {path} is not the IDs this model was trained on (another quantizer "
                    "was put in its place); restore the model's own quantizer folder"
                )
