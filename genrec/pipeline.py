"""``GenRecPipeline``: generator + tokenizer (+ quantizer) that answers ``recommend(history, k)``.

A *pipeline folder* (what ``genrec train`` writes) holds the generator (config.json, model.safetensors,
generation_config.json), the tokenizer files, ``ranking_config.json`` (how it ranks),
``genrec_train_config.json`` and optionally ``quantizer/``. It loads from a local folder or a Hub repo id.
How ranking works, stage by stage: ``genrec.ranking``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from . import DEFAULT_MAX_HISTORY, SEQUENTIAL_TASK
from .errors import GenRecError, UnknownItemError
from .layout import ITEM_PRIOR_FILE
from .pipeline_io import PipelineIO
from .ranking.catalogue import CatalogueEdits
from .ranking.config import RankingConfig
from .ranking.decode import beam_lists, history_readers
from .ranking.fuse import recombine
from .ranking.rescore import rescore
from .ranking.result import RankResult, Recommendation, ranking_records
from .utils import check_history_rows

logger = logging.getLogger(__name__)


class GenRecPipeline(PipelineIO, CatalogueEdits):
    """Rank a catalogue for item histories: ``recommend`` on item ids, ``rank`` on catalogue rows (batched).
    ``ranking_config`` holds every ranking setting; each call may override any of them."""

    def __init__(
        self,
        model,
        tokenizer,
        max_history: int = DEFAULT_MAX_HISTORY,
        quantizer_path: str | None = None,
        train_config: dict | None = None,
        item_prior: dict | None = None,
        ranking_config: RankingConfig | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_history = max_history
        self.quantizer_path = quantizer_path
        self.train_config = train_config or {}
        # {"counts": training interactions per row, "popularity_correction": a, ...}; see ``rank``
        self.item_prior = item_prior or {}
        self.ranking_config = ranking_config or RankingConfig()
        self._constraints: dict = {}  # decoding tries and popularity penalties, built once per catalogue state
        self._penalties: dict = {}
        self._quantizer = None
        self.name_or_path: str | None = None  # what from_pretrained was given, and the folder it loaded
        self.folder: Path | None = None

    # ---- ranking -------------------------------------------------------------------------------
    def modalities_for(self, modality: str) -> list[str]:
        available = [m for m in self.tokenizer.modalities if m in SEQUENTIAL_TASK]
        if modality == "fused":
            return available
        if modality not in available:
            raise GenRecError(f"unknown modality {modality!r}; choose from {available + ['fused']}")
        return [modality]

    @torch.no_grad()
    def rank(
        self,
        histories: Sequence[Sequence[int]],
        config: RankingConfig | None = None,
        progress: bool = False,
        **overrides,
    ) -> RankResult:
        """Rank items for each history of catalogue rows (oldest first), with ``config`` (default: the pipeline's
        ``ranking_config``) and any of its fields overridden by name (``rank(h, k=20, modality="text")``).
        All modalities of a request share batches with the other users' requests.

        - ``popularity_correction`` a scores an ID ``log p(ID | history) - a log P(ID)``, ``P`` the
          training-interaction share of its items (+1 each): beam search left alone proposes the same few
          popular items to everyone. None: ``item_prior.json``'s value, else 0.
        - ``cross_modal_history``: a modality's list reads the history in the other modality's IDs where they
          cover more of it, through the cross-modal next-item task if learned.
        - ``rescore``: every item some modality's beams proposed is scored under each other modality it has
          IDs in (``genrec.ranking.rescore``); the fusion then never guesses a missed score.
        - ``cold_start_share``, fusion weights and rules: ``genrec.ranking.cold_start`` / ``.fuse``.
        """
        config = (config or self.ranking_config).with_overrides(**overrides)
        correction = self._correction(config.popularity_correction)
        check_history_rows(histories, len(self.tokenizer.catalog))
        modalities = self.modalities_for(config.modality)
        decoded = [m for m in modalities if self.tokenizer.catalog.has_ids(m).any()]
        read = history_readers(self, histories, decoded) if config.cross_modal_history else {}
        lists = beam_lists(self, histories, modalities, read, config, correction, progress)
        res = RankResult([], [], lists.per_mod, lists.invalid, lists.beams, read=read, popularity_correction=correction)
        if config.rescore and len(decoded) > 1:
            res = rescore(self, res, histories, progress)
        return recombine(self, res, histories, config)

    def rescore(self, res: RankResult, histories: Sequence[Sequence[int]], progress: bool = False) -> RankResult:
        """``res`` (from ``rank(..., rescore=False)``) with every candidate scored under every modality
        (``genrec.ranking.rescore``); ``recombine`` makes the final lists."""
        return rescore(self, res, histories, progress)

    def recombine(
        self, res: RankResult, histories: Sequence[Sequence[int]], config: RankingConfig | None = None, **overrides
    ) -> RankResult:
        """The final lists of ``res`` made again with other fusion, exclusion or cold-start settings, without
        decoding again (``genrec.ranking.fuse``)."""
        return recombine(self, res, histories, (config or self.ranking_config).with_overrides(**overrides))

    def ranking_records(
        self, user_ids: Sequence[Any], histories: Sequence[Sequence[int]], res: RankResult
    ) -> list[dict]:
        """``rank`` output as item-id records, one per user (``genrec.ranking.result.ranking_records``)."""
        return ranking_records(self.tokenizer.item_ids, user_ids, histories, res)

    def _correction(self, popularity_correction: float | None) -> float:
        """The popularity correction to rank with: the given one, else the saved default; finite."""
        correction = (
            self.item_prior.get("popularity_correction", 0.0)
            if popularity_correction is None
            else popularity_correction
        )
        if not math.isfinite(correction):
            raise GenRecError(f"popularity_correction must be a finite number, got {correction}")
        return correction

    # ---- user-facing -----------------------------------------------------------------------------
    def _known_items(self, history: Sequence[Any]) -> list[Any]:
        """``history`` without the ids the catalogue does not know (logged as a warning)."""
        catalog = self.tokenizer.catalog
        unknown = [item for item in history if item not in catalog]
        if unknown:
            logger.warning(
                "ignoring %d item id(s) not in the catalogue: %s",
                len(unknown),
                ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else ""),
            )
            return [item for item in history if item in catalog]
        return list(history)

    def history_rows(self, history: Sequence[Any]) -> list[int]:
        """Catalogue rows of user-facing item ids; unknown ids and empty histories are errors."""
        if len(history) == 0:
            raise GenRecError(
                "the history is empty: genrec ranks from at least one known item (the generator is trained on "
                "non-empty histories); recommend() falls back to popular items, rank() does not"
            )
        rows = []
        for pos, item in enumerate(history):
            try:
                rows.append(self.tokenizer.catalog.row(item))
            except UnknownItemError:
                raise UnknownItemError(
                    f"history[{pos}]: unknown item id {item!r} (the catalogue has {len(self.tokenizer.catalog)} items; "
                    "add new items with tokenizer.add_items)"
                ) from None
        return rows

    def popular(self, k: int = 10) -> Recommendation:
        """The ``k`` items with the most training interactions (``item_prior.json``), scored by their share;
        what ``recommend`` gives a user without history. Sources say ``popular``."""
        counts = self.item_prior.get("counts")
        if not counts:
            raise GenRecError(
                f"the history is empty and this pipeline has no {ITEM_PRIOR_FILE} (written by `genrec "
                "train`) to fall back on popular items; pass at least one known item"
            )
        shares = torch.as_tensor(counts, dtype=torch.float64) / sum(counts)
        top = torch.argsort(shares, descending=True, stable=True)[:k].tolist()
        ids = self.tokenizer.item_ids
        return Recommendation([ids[r] for r in top], [float(shares[r]) for r in top], [["popular"]] * len(top))

    def recommend(
        self,
        history: Sequence[Any] | Sequence[Sequence[Any]],
        config: RankingConfig | None = None,
        strict: bool = False,
        **overrides,
    ) -> Recommendation | list[Recommendation]:
        """Next items for one history (list of item ids, oldest first) or a list of histories, ranked with
        ``config`` / the pipeline's ``ranking_config`` and ``overrides`` (``k=5``, ``modality="text"``, ...).

        Items of the history are left out unless ``exclude_history=False`` or a given ``config`` says otherwise
        (``genrec evaluate`` keeps them, as the papers' protocol does). Item ids the catalogue does not know are
        dropped with a warning (``strict=True``: an error); a history that is empty, or holds only unknown ids,
        gets the most popular items (see ``popular``).
        """
        if isinstance(history, (str, bytes)):
            raise GenRecError(
                f"history must be a list of item ids, got the string {history!r}; for one item write [{history!r}]"
            )
        if config is None:  # a given config says itself whether the history is left out
            overrides = {"exclude_history": True, **overrides}
        config = (config or self.ranking_config).with_overrides(**overrides)
        many = len(history) > 0 and all(isinstance(h, (list, tuple)) for h in history)
        histories = list(history) if many else [history]
        if not strict:
            histories = [self._known_items(h) for h in histories]
        known = [u for u, h in enumerate(histories) if len(h)]
        rows = [self.history_rows(histories[u]) for u in known]
        recs = [None if len(h) else self.popular(config.k) for h in histories]
        if rows:
            res = self.rank(rows, config)
            ids = self.tokenizer.item_ids
            for j, u in enumerate(known):
                recs[u] = Recommendation([ids[r] for r in res.rows[j]], res.scores[j], res.sources(j))
        return recs if many else recs[0]

    __call__ = recommend
