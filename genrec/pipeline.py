"""``GenRecPipeline``: generator + tokenizer (+ quantizer) that answers ``recommend(history, k)``.

A *pipeline folder* (what ``genrec train`` writes) holds the generator (config.json,
model.safetensors, generation_config.json), the tokenizer files, ``genrec_train_config.json`` and
optionally ``quantizer/``. It loads from a local folder or a Hub repo id.

Ranking (MACRec): per modality, the history's IDs in that modality feed the generator's sequential
task (text: ``<seqrec>``, image: ``<seqimage>``; a history lacking some of them may be read in the other
modality's IDs through the cross-modal task, ``rank(cross_modal_history=...)``); a trie-constrained beam search (20 beams,
MACRec/MQL4GRec) yields IDs, each mapped to the item(s) carrying it; every item a list proposed is then
scored under the other modalities too (``rank(rescore=...)``), and the lists are fused.

- Score of an ID: sum of log-probabilities of its code tokens and the closing EOS (see
  ``genrec.generation.beam_search``), normalised the way the model was trained (``config.id_softmax``:
  over the whole vocabulary, or over the codes that may follow each prefix, the EOS then adding 0).
  The ``macrec`` fusion sees that sum / (levels + 1), which is HF's ``sequences_scores`` that MACRec fused.
- An ID shared by several items (unresolved collisions) yields all of them with the same score, in
  catalogue row order; a list may therefore hold more items than beams.
- Fused ties break by catalogue row. Results hold at most ``k`` items (fewer only when the catalogue
  has fewer outside the history: a list that ``exclude_history`` left short is decoded again with more
  beams); ``k`` may not exceed ``num_beams``.
- Empty history: an error. The generator is trained on histories of at least one item, so an
  empty input has no trained meaning; callers choose their own fallback (e.g. popular items).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import DEFAULT_MAX_HISTORY, ITEM_TASKS, SEQUENTIAL_TASK, TASK_MODALITIES
from .errors import GenRecError, UnknownItemError, read_json_file
from .generation import IDConstraint, constrained_beam_search, fuse
from .generation.fusion import FUSION_RULES
from .generation.scoring import score_ids
from .layout import ADAPTER_CONFIG_FILE, ITEM_PRIOR_FILE, MODEL_CONFIG_FILE, QUANTIZER_DIR, TRAIN_CONFIG_FILE
from .modeling import embedding_rows
from .modeling.lora import is_adapter_folder, load_generator
from .utils import check_history_rows, nonfinite_parameters, torch_device

logger = logging.getLogger(__name__)

DEFAULT_NUM_BEAMS = 20  # MACRec / MQL4GRec test scripts
DEFAULT_BATCH_SIZE = 64  # requests (user x modality) per forward; our choice, fits CPU caches
# Share of the top-k slots that items added after training (add_items) may take, by shared ID prefix
# with the generated beams (see GenRecPipeline.rank): chosen on Instruments validation users, among 0.1,
# 0.2, 0.3 and 0.5, as the largest cold-item hit rate costing at most 3% of the other users' NDCG@10
# (benchmarks/results/coldstart.md); it has no effect on a catalogue without added items.
DEFAULT_COLD_START_SHARE = 0.2

# Fusion where items lack a modality (impute_missing): each modality's list is weighted by the share of the
# user's history it could read, to this power. Infinite: a list counts only for a user whose whole (read)
# history has IDs in its modality; the other modalities rank alone for the rest. Chosen on Instruments
# validation users (all 17,110) with 25/50/75% of the items stripped of their image IDs or their text IDs:
# the best mean among the powers 0, 0.5, 1, 2, 4 and infinity (benchmarks/results/coldstart.md).
HISTORY_COVERAGE_POWER = math.inf
# Fusion weight of a list that read the history in the other modality's IDs (cross_modal_history), relative to
# its modality's weight. Chosen like the power, on all 17,110 Instruments validation users: the best mean over
# the p > 0 points among 0, 0.25, 0.5, 0.75 and 1 (0.5; the five means lie within 1.4e-4 of each other).
CROSS_MODAL_WEIGHT = 0.5


def _cross_task(source: str, target: str) -> str | None:
    """The sequential task that reads a history's ``source`` IDs and predicts the next item's ``target`` ID."""
    return next((t for t, io in TASK_MODALITIES.items() if io == (source, target) and t not in ITEM_TASKS), None)


@dataclass
class Recommendation:
    """One user's ranking: ``item_ids`` best first with ``scores``; ``sources[i]`` = modalities whose
    beam search proposed item i."""

    item_ids: list[Any]
    scores: list[float]
    sources: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"item_ids": self.item_ids, "scores": self.scores, "sources": self.sources}


@dataclass
class RankResult:
    """Batched ranking in catalogue rows. ``rows``/``scores``: final lists per user; ``per_modality[m]``:
    (rows, scores) per user before fusion; ``invalid[m]``: beams that mapped to no item; ``beams[m]``:
    beams generated."""

    rows: list[list[int]]
    scores: list[list[float]]
    per_modality: dict[str, tuple[list[list[int]], list[list[float]]]]
    invalid: dict[str, int]
    beams: dict[str, int]
    cold_start: list[list[int]] = field(default_factory=list)  # per user: rows placed by the cold-start rule
    # per modality that read the other's IDs for some user: per user, the modality its list read (cross_modal_history)
    read: dict[str, list[str]] = field(default_factory=dict)
    # rank(rescore=True): per modality, (rows, scores) per user of every item some list proposed that has its
    # IDs, scored under it (best first); fusion reads these instead of ``per_modality``
    rescored: dict[str, tuple[list[list[int]], list[list[float]]]] = field(default_factory=dict)
    popularity_correction: float = 0.0  # the one the beams scored with (rescore scores the same way)

    @classmethod
    def concat(cls, parts: Sequence["RankResult"]) -> "RankResult":
        """The results of consecutive shards of users as one (counts summed)."""
        mods = list(parts[0].per_modality)
        if len({(tuple(p.rescored), p.popularity_correction) for p in parts}) > 1:
            raise GenRecError("RankResult.concat: the parts were ranked with different settings "
                              "(rescored modalities or popularity correction)")
        return cls(
            rows=[r for p in parts for r in p.rows],
            scores=[s for p in parts for s in p.scores],
            per_modality={m: ([r for p in parts for r in p.per_modality[m][0]],
                              [s for p in parts for s in p.per_modality[m][1]]) for m in mods},
            invalid={m: sum(p.invalid[m] for p in parts) for m in mods},
            beams={m: sum(p.beams[m] for p in parts) for m in mods},
            cold_start=[c for p in parts for c in (p.cold_start or [[] for _ in p.rows])],
            read={m: [r for p in parts for r in p.read.get(m, [m] * len(p.rows))]
                  for m in dict.fromkeys(m for p in parts for m in p.read)},  # a shard may have read no other
            rescored={m: ([r for p in parts for r in p.rescored[m][0]], [s for p in parts for s in p.rescored[m][1]])
                      for m in parts[0].rescored},
            popularity_correction=parts[0].popularity_correction,
        )

    def sources(self, user: int) -> list[list[str]]:
        """For each item of ``rows[user]``, the modalities whose beams proposed it."""
        proposed = {m: set(rows[user]) for m, (rows, _) in self.per_modality.items()}
        added = set(self.cold_start[user]) if self.cold_start else set()
        return [["cold_start"] if r in added else [m for m, found in proposed.items() if r in found]
                for r in self.rows[user]]


def _candidate_batches(cands: list[list[int]], budget: int = DEFAULT_BATCH_SIZE * DEFAULT_NUM_BEAMS,
                       users: int = DEFAULT_BATCH_SIZE) -> list[list[int]]:
    """Users with candidates, in batches of at most ``users`` users and ``budget`` decoder rows: each user's
    candidates are padded to the batch's largest count (``genrec.generation.scoring``), so a user with many
    (IDs that several items share) does not widen everyone's."""
    batches: list[list[int]] = []
    widest = 0
    for u, c in enumerate(cands):
        if not c:
            continue
        if batches and len(batches[-1]) < users and (len(batches[-1]) + 1) * max(widest, len(c)) <= budget:
            batches[-1].append(u)
            widest = max(widest, len(c))
        else:
            batches.append([u])
            widest = len(c)
    return batches


def _unzip(pairs: list[list[tuple[int, float]]]) -> tuple[list[list[int]], list[list[float]]]:
    """Per-user (row, score) pairs -> (rows per user, scores per user)."""
    return [[r for r, _ in user] for user in pairs], [[x for _, x in user] for user in pairs]


def _drop_rows(lists: dict, drop: list[set]) -> dict:
    """Per-modality (rows, scores) lists without each user's ``drop`` rows."""
    return {m: _unzip([[(r, x) for r, x in zip(rows[u], scores[u]) if r not in drop[u]] for u in range(len(rows))])
            for m, (rows, scores) in lists.items()}


@contextlib.contextmanager
def _no_progress_bars():
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _check_tokenizer_fits(path: Path, model, tok, trained_on: dict | None) -> None:
    """Refuse a tokenizer other than the one the generator was trained with: its IDs would decode to
    other items (another catalogue) or index other embedding rows (another vocabulary)."""
    rows = embedding_rows(model)
    if len(tok) > rows:
        raise GenRecError(f"{path}: the tokenizer has {len(tok)} tokens but the generator only {rows} embedding rows; "
                          "the tokenizer belongs to another model")
    if trained_on is None:  # folders written before the fingerprint was recorded
        return
    found = tok.fingerprint()
    if "trained_rows" in trained_on:  # items added after training (add_items): the trained rows must match
        found = {**found, "catalogue": tok.catalog.fingerprint(trained_on["trained_rows"]),
                 "trained_rows": trained_on["trained_rows"]}
    if found != {k: v for k, v in trained_on.items() if k != "ids_edited"}:
        raise GenRecError(f"{path}: the generator was trained with tokenizer {trained_on} but the folder holds "
                          f"{found} (another quantizer or catalogue); save the tokenizer the model was trained with")


class GenRecPipeline:
    def __init__(self, model, tokenizer, max_history: int = DEFAULT_MAX_HISTORY, quantizer_path: str | None = None,
                 train_config: dict | None = None, item_prior: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_history = max_history
        self.quantizer_path = quantizer_path
        self.train_config = train_config or {}
        # {"counts": training interactions per row, "popularity_correction": a, ...}; see ``rank``
        self.item_prior = item_prior or {}
        self._constraints: dict[tuple[str, ...], IDConstraint] = {}
        self._penalties: dict[tuple[tuple[str, ...], float], torch.Tensor] = {}
        self._quantizer = None

    # ---- loading / saving ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike, device: str | torch.device | None = None,
                        revision: str | None = None, token: str | None = None) -> "GenRecPipeline":
        """Load a pipeline folder, or a Hub repo id holding one (downloaded once into the HF cache)."""
        from safetensors import SafetensorError
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = Path(path_or_repo)
        if not path.is_dir():
            if Path(str(path_or_repo)).exists() or str(path_or_repo).startswith((".", "/")):
                raise GenRecError(f"{path_or_repo}: not a pipeline folder")
            from .hub import fetch_from_hub

            path = fetch_from_hub(str(path_or_repo), revision=revision, token=token)
        adapter = is_adapter_folder(path)
        if not (adapter or (path / MODEL_CONFIG_FILE).is_file()):
            raise GenRecError(f"{path}: no {MODEL_CONFIG_FILE} or {ADAPTER_CONFIG_FILE}; not a pipeline folder (run "
                              "`genrec train` first)")
        # genrec's classes are registered; code shipped inside a folder or repo is never run
        try:
            with _no_progress_bars():  # a small model loads in a blink: no "Loading weights" bar
                if adapter:  # a LoRA folder: its base with the adapter merged in (plain weights decode fastest)
                    model = load_generator(path).merge_and_unload()
                else:
                    model = AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=False)
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        except (OSError, ValueError, RuntimeError, SafetensorError) as e:  # truncated weights, malformed configs
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise GenRecError(f"{path}: cannot load the generator or its tokenizer ({first})") from e
        if not hasattr(tok, "trie"):
            raise GenRecError(f"{path}: the tokenizer is {type(tok).__name__}, not a genrec SemanticIDTokenizer")
        train_config = {}
        if (path / TRAIN_CONFIG_FILE).is_file():
            train_config = read_json_file(path / TRAIN_CONFIG_FILE, "the training record object")
        _check_tokenizer_fits(path, model, tok, train_config.get("fingerprint"))
        diverged = nonfinite_parameters(model)
        if diverged:  # every score would be NaN and every list empty
            raise GenRecError(f"{path}: {len(diverged)} weight tensors hold NaN or inf (first: {diverged[0]}); "
                              "the training diverged: retrain with a lower --lr or with --max-grad-norm")
        item_prior = None
        if (path / ITEM_PRIOR_FILE).is_file():
            item_prior = read_json_file(path / ITEM_PRIOR_FILE, "the item prior object")
        quantizer = path / QUANTIZER_DIR
        # The trainer records its TrainingArguments (max_history among them); older folders: the default.
        max_history = train_config.get("training_args", {}).get("max_history", DEFAULT_MAX_HISTORY)
        pipe = cls(model, tok, max_history=int(max_history),
                   quantizer_path=str(quantizer) if quantizer.is_dir() else None, train_config=train_config,
                   item_prior=item_prior)
        if device is not None:
            pipe.model.to(torch_device(device))
        return pipe

    @property
    def quantizer(self):
        """The quantizer saved beside the generator (loaded on first use; None when the folder has none)."""
        if self._quantizer is None and self.quantizer_path is not None:
            from transformers import AutoModel

            try:
                import genrec.quantizer  # noqa: F401  (registers the quantizer with AutoModel)
            except ImportError:
                pass
            self._quantizer = AutoModel.from_pretrained(self.quantizer_path, trust_remote_code=False)
        return self._quantizer

    def _check_quantizer_ids(self) -> None:
        """The saved quantizer must be the one the catalogue's IDs came from (its ``sid_*.npy`` are the trained
        rows' IDs): another quantizer of the same shape would encode new items into codes that mean other
        items to the generator."""
        from .data.loading import SID_FILES

        catalog = self.tokenizer.catalog
        for m, name in SID_FILES.items():
            path = Path(self.quantizer_path) / name
            if m not in catalog.codes or not path.is_file():
                continue
            ids = np.load(path, allow_pickle=False)
            if ids.shape != (self.trained_rows, catalog.levels(m)) or not np.array_equal(ids,
                                                                                          catalog.codes[m][:len(ids)]):
                raise GenRecError(f"add_items: {path} is not the IDs this model was trained on (another quantizer "
                                  "was put in its place); restore the model's own quantizer folder")

    def save_pretrained(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the pipeline folder atomically (generator, tokenizer, train config, quantizer); an existing
        ``path`` is replaced only when it is a genrec generator folder, or with ``overwrite``."""
        from .utils import atomic_output_dir

        with atomic_output_dir(path, "generator", overwrite=overwrite) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if self.train_config:
                (tmp / TRAIN_CONFIG_FILE).write_text(json.dumps(self.train_config, indent=2), encoding="utf-8")
            if self.item_prior:
                (tmp / ITEM_PRIOR_FILE).write_text(json.dumps(self.item_prior), encoding="utf-8")
            if self._quantizer is not None:
                self._quantizer.save_pretrained(tmp / QUANTIZER_DIR)
            elif self.quantizer_path is not None:
                shutil.copytree(self.quantizer_path, tmp / QUANTIZER_DIR)

    # ---- ranking -------------------------------------------------------------------------------
    def modalities_for(self, modality: str) -> list[str]:
        available = [m for m in self.tokenizer.modalities if m in SEQUENTIAL_TASK]
        if modality == "fused":
            return available
        if modality not in available:
            raise GenRecError(f"unknown modality {modality!r}; choose from {available + ['fused']}")
        return [modality]

    def _constraint(self, modalities: tuple[str, ...]) -> IDConstraint:
        if modalities not in self._constraints:
            self._constraints[modalities] = IDConstraint.from_tokenizer(self.tokenizer, modalities)
        return self._constraints[modalities].to(self.model.device)

    def _groups(self, modalities: list[str]) -> list[tuple[str, ...]]:
        """Modalities decoded in one batch: those whose IDs have the same length."""
        by_len: dict[int, list[str]] = {}
        for m in modalities:
            by_len.setdefault(self.tokenizer.num_levels(m), []).append(m)
        return [tuple(g) for g in by_len.values()]

    @torch.no_grad()
    def rank(self, histories: Sequence[Sequence[int]], modality: str = "fused", k: int = 10,
             num_beams: int = DEFAULT_NUM_BEAMS, fusion: str = "macrec", exclude_history: bool = False,
             batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False,
             popularity_correction: float | None = None, cold_start_share: float = DEFAULT_COLD_START_SHARE,
             impute_missing: bool = True, modality_weights: dict[str, float] | None = None,
             coverage_power: float = HISTORY_COVERAGE_POWER, cross_modal_history: bool = True,
             cross_modal_weight: float = CROSS_MODAL_WEIGHT, rescore: bool = True) -> RankResult:
        """Rank items for each history of catalogue rows (oldest first). All modalities of a request
        share batches with the other users' requests.

        ``popularity_correction`` a (default: ``item_prior["popularity_correction"]``, else 0) scores
        an ID ``log p(ID | history) - a log P(ID)``, ``P`` the training-interaction share of its items
        (+1 each): beam search left alone proposes the same few popular items to everyone.

        ``cold_start_share`` s: items added after training (``add_items``) were never a training target,
        so beam search rarely reaches them. The last ``round(s * k)`` slots of each list go to the added
        items whose IDs share the longest prefix (as a share of the ID) with a generated beam or, after
        the beams, with an item of the history (most recent first); ties go to the better-ranked anchor,
        then the row. Each carries its anchor's score (a history anchor: the lowest beam score). A list
        keeps its generated items when no added item shares at least the first code. 0 switches it off;
        without added items it changes nothing.

        ``cross_modal_history``: a modality's list reads the history in the other modality's IDs where they cover
        more of it, through the cross-modal next-item task (``seqitem2image`` / ``seqimage2item``) if learned.
        A modality no item has IDs in is not decoded. The fusion's settings: ``recombine``.

        ``rescore``: before fusing, every item some modality's beams proposed is scored under each other
        modality it has IDs in, by teacher forcing (``RankResult.rescored``): beam search alone leaves an item
        the other list missed without that list's score, and the fusion then has to guess it (README: gain, cost)."""
        correction = self._correction(popularity_correction)
        self._check_request(histories, k, num_beams, fusion)
        modalities = self.modalities_for(modality)
        n = len(histories)
        per_mod = {m: ([[] for _ in range(n)], [[] for _ in range(n)]) for m in modalities}
        invalid = dict.fromkeys(modalities, 0)
        decoded = [m for m in modalities if self.tokenizer.catalog.has_ids(m).any()]
        groups = self._groups(decoded)
        group_of = {m: g for g in groups for m in g}
        read = self._history_readers(histories, decoded) if cross_modal_history else {}
        inputs = self._task_inputs(histories, decoded, read)
        requests = list(inputs)  # sorted by (group, input length) so padding stays small; results land by (u, m)
        requests.sort(key=lambda r: (groups.index(group_of[r[1]]), len(inputs[r])))
        bar = tqdm(total=len(requests), desc="ranking", unit="req", disable=not progress)
        for start in range(0, len(requests), batch_size):
            chunk = requests[start : start + batch_size]
            for group in dict.fromkeys(group_of[m] for _, m in chunk):
                part = [r for r in chunk if group_of[r[1]] == group]
                self._decode(part, inputs, group, num_beams, per_mod, invalid, histories, exclude_history,
                             correction)
            bar.update(len(chunk))
        bar.close()
        beams = {m: n * num_beams * (m in decoded) for m in modalities}
        if exclude_history:
            self._widen_short_lists(requests, inputs, group_of, (num_beams, k), per_mod, (invalid, beams), histories,
                                    correction)
        res = RankResult([], [], per_mod, invalid, beams, read=read, popularity_correction=correction)
        if rescore and len(decoded) > 1:
            res = self.rescore(res, histories, progress)
        return self.recombine(res, histories, k, fusion, exclude_history, cold_start_share, impute_missing,
                              modality_weights, coverage_power, cross_modal_weight)

    def _widen_short_lists(self, requests, inputs, group_of, widths: tuple[int, int], per_mod, counts, histories,
                           correction) -> None:
        """Decode again, with as many more beams as the history has items, each list that leaving out the history
        left under ``k`` items while its modality has more items to offer (a history covering much of the
        catalogue fills the beams with items it already holds)."""
        num_beams, k = widths
        invalid, beams = counts
        has = {m: self.tokenizer.catalog.has_ids(m) for m in per_mod}
        short = [(u, m) for u, m in requests if len(per_mod[m][0][u]) < k
                 and len(per_mod[m][0][u]) < int(has[m].sum()) - len({r for r in histories[u] if has[m][r]})]
        if not short:
            return
        wide = num_beams + max(len(set(histories[u])) for u, _ in short)
        logger.info("%d list(s) held fewer than k=%d items once the history was left out: decoded again with %d "
                    "beams", len(short), k, wide)
        for u, m in short:
            per_mod[m][0][u].clear()
            per_mod[m][1][u].clear()
        for group in dict.fromkeys(group_of[m] for _, m in short):
            part = [r for r in short if group_of[r[1]] == group]
            for start in range(0, len(part), DEFAULT_BATCH_SIZE):
                self._decode(part[start:start + DEFAULT_BATCH_SIZE], inputs, group, wide, per_mod, invalid, histories,
                             True, correction)
            for _, m in part:
                beams[m] += wide

    def _task_inputs(self, histories, modalities: Sequence[str], read: dict[str, list[str]]) -> dict:
        """(user, modality) -> the generator input of that modality's next-item request for that user."""
        inputs = {}
        for m in modalities:
            for u, history in enumerate(histories):
                source = read[m][u] if m in read else m
                task = SEQUENTIAL_TASK[m] if source == m else _cross_task(source, m)
                inputs[u, m] = self.tokenizer.encode_task_input(task, history, source, max_items=self.max_history)
        return inputs

    def _coverage(self, histories: Sequence[Sequence[int]], modality: str) -> np.ndarray:
        """Per history: the share of its last ``max_history`` items that have ``modality`` IDs (the input
        skips the others and reaches further back); 1 for an empty history or ``max_history`` 0."""
        present = self.tokenizer.catalog.has_ids(modality)
        if present.all() or self.max_history <= 0:
            return np.ones(len(histories))
        read = [list(h)[-self.max_history:] for h in histories]
        return np.array([float(present[h].mean()) if h else 1.0 for h in read])

    def _history_readers(self, histories, modalities: Sequence[str]) -> dict[str, list[str]]:
        """Per modality whose list reads a history through the learned cross-modal task for some user: the
        modality each user's history is read in (the one covering more of it; its own on a tie)."""
        trained = self.train_config.get("tasks") or ()
        sources = {m: [s for s in self.tokenizer.modalities if s != m and _cross_task(s, m) in trained]
                   for m in modalities}
        if not any(sources.values()):
            return {}
        cover = {m: self._coverage(histories, m) for m in self.tokenizer.modalities}
        return {m: [max([m, *sources[m]], key=lambda s: (cover[s][u], s == m)) for u in range(len(histories))]
                for m in modalities if sources[m] and not (cover[m] == 1).all()}

    def rescore(self, res: RankResult, histories: Sequence[Sequence[int]], progress: bool = False) -> RankResult:
        """``res`` (from ``rank(..., rescore=False)`` on ``histories``) with ``rescored``: per decoded modality,
        each user's candidates (the rows any modality's list holds) that have its IDs, with the score its beam
        search gave them or, for the rows its beams missed, would have given them (``genrec.generation.scoring``:
        the same history reading and ``res.popularity_correction``), best first. The final lists are left empty:
        ``recombine`` makes them."""
        correction = res.popularity_correction
        decoded = [m for m in res.per_modality if self.tokenizer.catalog.has_ids(m).any()]
        inputs = self._task_inputs(histories, decoded, res.read)
        union = [list(dict.fromkeys(r for rows, _ in res.per_modality.values() for r in rows[u]))
                 for u in range(len(histories))]
        rescored = {}
        for group in self._groups(decoded):
            for m in group:
                has, (beam_rows, beam_scores) = self.tokenizer.catalog.has_ids(m), res.per_modality[m]
                found = [dict(zip(r, s)) for r, s in zip(beam_rows, beam_scores)]
                missed = [[r for r in rows if has[r] and r not in f] for rows, f in zip(union, found)]
                scores = self._score_candidates(group, m, missed, inputs, correction, progress)
                rescored[m] = _unzip([sorted([*f.items(), *zip(c, s)], key=lambda pair: (-pair[1], pair[0]))
                                      for f, c, s in zip(found, missed, scores)])
        return replace(res, rescored=rescored, rows=[], scores=[], cold_start=[])

    def _score_candidates(self, group, modality, cands, inputs, correction, progress) -> list[list[float]]:
        """Per user u, the ``modality`` scores of the rows ``cands[u]`` given its input ``inputs[u, modality]``.
        Rows sharing an ID (unresolved collisions) are scored once per user."""
        device = self.model.device
        constraint = self._constraint(group)
        index = constraint.modality_index(modality)
        codes = self.tokenizer.catalog.codes[modality]
        id_tokens = constraint.token_start[index] + torch.as_tensor(codes, device=device).clamp(min=0)  # -1: not asked
        keys = [[codes[r].tobytes() for r in c] for c in cands]
        distinct = [dict(zip(k, c)) for k, c in zip(keys, cands)]  # ID -> one of its rows
        cands = [list(d.values()) for d in distinct]
        scores: list[list[float]] = [[] for _ in cands]
        for users in tqdm(_candidate_batches(cands), desc=f"rescoring {modality}", disable=not progress):
            batch = self.tokenizer.pad([{"input_ids": inputs[u, modality]} for u in users], return_tensors="pt")
            owner = torch.tensor([j for j, u in enumerate(users) for _ in cands[u]], device=device)
            flat = score_ids(self.model, batch["input_ids"].to(device), batch["attention_mask"].to(device), constraint,
                             torch.full((len(users),), index, device=device),
                             id_tokens[torch.tensor([r for u in users for r in cands[u]], device=device)], owner,
                             self._penalty(group, correction)).tolist()
            ends = np.cumsum([len(cands[u]) for u in users]).tolist()
            for u, a, b in zip(users, [0, *ends], ends):
                scores[u] = flat[a:b]
        by_id = [dict(zip(d, s)) for d, s in zip(distinct, scores)]
        return [[ids[k] for k in user_keys] for ids, user_keys in zip(by_id, keys)]

    def _missing_ids(self, per_mod: dict) -> dict[int, list[int]]:
        """Rows lacking IDs in some fused modality (row -> the indices of those modalities' lists); an empty
        dict when every item has them all."""
        lacking: dict[int, list[int]] = {}
        for j, m in enumerate(per_mod):
            for r in np.flatnonzero(~self.tokenizer.catalog.has_ids(m)).tolist():
                lacking.setdefault(r, []).append(j)
        return lacking

    def _correction(self, popularity_correction: float | None) -> float:
        """The popularity correction to rank with: the given one, else the saved default; finite."""
        correction = self.item_prior.get("popularity_correction", 0.0) if popularity_correction is None \
            else popularity_correction
        if not math.isfinite(correction):
            raise GenRecError(f"popularity_correction must be a finite number, got {correction}")
        return correction

    def _check_request(self, histories, k: int, num_beams: int, fusion: str) -> None:
        """Refuse a ranking request before any decoding."""
        if not 1 <= k <= num_beams:
            raise GenRecError(f"k={k} must be between 1 and num_beams={num_beams} (the beam width is not widened)")
        check_history_rows(histories, len(self.tokenizer.catalog))
        if fusion not in FUSION_RULES:
            raise GenRecError(f"unknown fusion rule {fusion!r}; choose from {list(FUSION_RULES)}")

    def _cold_start(self, per_mod, rows, scores, k, slots, histories, exclude_history) -> list[list[int]]:
        """Replace the tail of each list by added items sharing the longest ID prefix with its beams, or
        else with the history's items (most recent first): in place."""
        first_new = self.trained_rows
        catalog = self.tokenizer.catalog
        if slots <= 0 or first_new >= len(catalog):
            return [[] for _ in rows]
        new_codes = {m: catalog.codes[m][first_new:] for m in per_mod}
        lacking = {m: ~catalog.has_ids(m)[first_new:] for m in per_mod}
        added = []
        for u in range(len(rows)):
            best: dict[int, tuple] = {}  # new row -> (-shared share of the ID, anchor rank, score)
            for m, (beam_rows, beam_scores) in per_mod.items():
                new = new_codes[m]
                anchors = list(beam_rows[u]) + list(reversed(histories[u]))
                if not anchors:
                    continue
                floor = min(beam_scores[u]) if beam_scores[u] else 0.0
                anchor_scores = list(beam_scores[u]) + [floor] * len(histories[u])
                codes = catalog.codes[m][anchors]  # [A, L]
                same = np.cumprod(codes[:, None, :] == new[None, :, :], axis=2).sum(2)  # shared prefix [A, N]
                same[:, lacking[m]] = 0
                rank = same.argmax(0)  # best-ranked anchor among those with the longest shared prefix
                depth = same[rank, np.arange(len(new))]
                for j in np.flatnonzero(depth > 0):
                    key = (-int(depth[j]) / codes.shape[1], int(rank[j]), float(anchor_scores[rank[j]]))
                    row = first_new + int(j)
                    if row not in best or key < best[row]:
                        best[row] = key
            kept = k - slots  # generated items that keep their place (an added item among them stays too)
            skip = set(rows[u][:kept]) | (set(histories[u]) if exclude_history else set())
            picks = sorted((key, row) for row, key in best.items() if row not in skip)[:slots]
            kept = max(kept, k - len(picks))  # fewer candidates than slots: generated items fill the rest
            scores[u] = scores[u][:kept] + [key[2] for key, _ in picks]
            rows[u] = rows[u][:kept] + [row for _, row in picks]
            added.append([row for _, row in picks])
        return added

    def recombine(self, res: RankResult, histories: Sequence[Sequence[int]], k: int = 10, fusion: str = "macrec",
                  exclude_history: bool = False, cold_start_share: float = DEFAULT_COLD_START_SHARE,
                  impute_missing: bool = True, modality_weights: dict[str, float] | None = None,
                  coverage_power: float = HISTORY_COVERAGE_POWER,
                  cross_modal_weight: float = CROSS_MODAL_WEIGHT) -> RankResult:
        """The final lists of ``res`` made again from its per-modality lists with other settings (``rank``'s
        arguments of the same names), without decoding again: the ``rescored`` lists where ``res`` has them
        (``rank(rescore=True)``), else the beams' lists. ``exclude_history`` drops each user's history items
        from every modality's list first.

        ``modality_weights`` (modality -> weight >= 0, default 1 each): each modality's part in the fusion
        (``genrec.generation.fusion``); 0 leaves a list out.

        ``impute_missing``: an item without IDs in a modality (a row of -1: no image, say) is fused as if that
        modality's list had found it too, with its own score, and each list is weighted by the share of the
        user's history items with IDs in the modality it read, to the power ``coverage_power`` (default inf: a
        list only counts for a user whose whole history has its IDs; 0: imputation alone), times
        ``cross_modal_weight`` for a list that read the other modality's IDs (``cross_modal_history``). Without
        missing IDs this is the plain rule; False keeps the plain rule always."""
        per_mod, rescored = res.per_modality, res.rescored
        if exclude_history:
            seen = [set(h) for h in histories]
            per_mod, rescored = (_drop_rows(lists, seen) for lists in (per_mod, rescored))
        modality_weights = modality_weights or {}
        weights = [modality_weights.get(m, 1.0) for m in per_mod]
        if set(modality_weights) - set(self.tokenizer.modalities) or not all(
                isinstance(w, (int, float)) and 0 <= w < math.inf for w in weights) or not any(weights):
            raise GenRecError(f"modality_weights {modality_weights}: finite weights >= 0 for modalities of "
                              f"{self.tokenizer.modalities}, at least one of {list(per_mod)} above 0")
        if not coverage_power >= 0:
            raise GenRecError(f"coverage_power must be >= 0 (inf allowed), got {coverage_power}")
        if not 0 <= cross_modal_weight < math.inf:
            raise GenRecError(f"cross_modal_weight must be finite and >= 0, got {cross_modal_weight}")
        rows, scores = self._combine({m: rescored.get(m, lists) for m, lists in per_mod.items()}, fusion, k,
                                     impute_missing, histories, weights,
                                     (coverage_power, cross_modal_weight), res.read)
        added = self._cold_start(per_mod, rows, scores, k, round(cold_start_share * k), histories, exclude_history)
        return RankResult(rows, scores, per_mod, res.invalid, res.beams, added, res.read, rescored)

    def _combine(self, per_mod: dict, fusion: str, k: int, impute_missing: bool, histories, base: list[float],
                 coverage: tuple[float, float], read: dict[str, list[str]]) -> tuple[list, list]:
        """Final top-``k`` per user: the one modality's list, or the modalities' lists fused (``base``: each
        list's weight; ``coverage``: (power, cross-modal weight); ``read``: the modality each list read where
        not its own)."""
        rows, scores = [], []
        lacking = self._missing_ids(per_mod) if impute_missing and len(per_mod) > 1 else None
        if lacking:  # a list is as good as the history it could read
            cover = {m: self._coverage(histories, m) for m in self.tokenizer.modalities}
            power, cross = coverage
            factor = [[1.0] * len(per_mod) for _ in histories]
            crossed = [[1.0] * len(per_mod) for _ in histories]  # the weight left when no list covers the history
            for j, m in enumerate(per_mod):
                for u, source in enumerate(read.get(m) or [m] * len(histories)):
                    crossed[u][j] = cross if source != m else 1.0
                    factor[u][j] = cover[source][u] ** power * crossed[u][j]
        for u in range(len(next(iter(per_mod.values()))[0])):
            if len(per_mod) == 1:
                (r, s), = per_mod.values()
                rows.append(r[u][:k])
                scores.append(s[u][:k])
                continue
            lists = []
            for m, (r, s) in per_mod.items():
                s = s[u]
                if fusion == "macrec":  # MACRec fused HF sequences_scores = sum / ID length (+ EOS)
                    s = [x / (self.tokenizer.num_levels(m) + 1) for x in s]
                lists.append((r[u], s))
            weights = base
            if lacking:
                for fs in (factor[u], crossed[u]):  # no list covers the history: coverage left out
                    scaled = [w * f for w, f in zip(base, fs)]
                    if any(scaled):
                        weights = scaled
                        break
            r, s = fuse(lists, fusion, k, lacking, weights)
            rows.append(r)
            scores.append(s)
        return rows, scores

    def _penalty(self, group: tuple[str, ...], correction: float) -> torch.Tensor | None:
        """``correction * log P(code | prefix)`` per edge of ``group``'s trie (None when the correction is 0)."""
        if correction == 0:
            return None
        key = (group, correction)
        if key not in self._penalties:  # built once per ranking setting, not per batch
            counts = self.item_prior.get("counts")
            if counts is None:
                raise GenRecError(
                    f"popularity_correction={correction} needs item counts ({ITEM_PRIOR_FILE} in the pipeline "
                    "folder, written by `genrec train`); this pipeline has none"
                )
            # Items added after training (tokenizer.add_items) have no interactions: weight 1.
            weights = torch.ones(len(self.tokenizer.catalog), dtype=torch.float64)
            weights[: len(counts)] += torch.as_tensor(counts[: len(weights)], dtype=torch.float64)
            self._penalties[key] = correction * self._constraint(group).log_prior(weights)
        return self._penalties[key].to(self.model.device)  # a no-op unless the model moved

    def _decode(self, part, inputs, group, num_beams, per_mod, invalid, histories, exclude_history, correction):
        constraint = self._constraint(group)
        batch = self.tokenizer.pad([{"input_ids": inputs[r]} for r in part], return_tensors="pt")
        device = self.model.device
        out = constrained_beam_search(
            self.model,
            batch["input_ids"].to(device),
            batch["attention_mask"].to(device),
            constraint,
            torch.tensor([constraint.modality_index(m) for _, m in part], device=device),
            num_beams=min(num_beams, constraint.n_leaves),  # never more beams than IDs to find
            penalty=self._penalty(group, correction),
        )
        leaves, scores = out.leaves.tolist(), out.scores.tolist()
        for (u, m), req_leaves, req_scores in zip(part, leaves, scores):
            seen = set(histories[u]) if exclude_history else ()
            rows, vals = per_mod[m]
            for leaf, score in zip(req_leaves, req_scores):
                if leaf < 0:
                    invalid[m] += 1
                    continue
                for row in constraint.rows_of_leaf(leaf):
                    if row not in seen:
                        rows[u].append(row)
                        vals[u].append(score)

    def ranking_records(self, user_ids: Sequence[Any], histories: Sequence[Sequence[int]], res: RankResult) -> list[dict]:
        """``rank`` output as item-id records, one per user, in the form ``genrec.hub.push_rankings`` publishes:
        ``user_id``, ``history``, ranked ``items`` with ``scores`` and ``sources`` (modalities that proposed each),
        and the ``per_modality`` lists they came from (as the beams left them, before rescoring)."""
        ids = [str(i) for i in self.tokenizer.item_ids]

        def ranked(rows, scores):
            return {"items": [ids[r] for r in rows], "scores": list(scores)}

        return [
            {"user_id": str(user), "history": [ids[r] for r in histories[u]], **ranked(res.rows[u], res.scores[u]),
             "sources": res.sources(u), "per_modality": {m: ranked(rows[u], scores[u]) for m, (rows, scores) in res.per_modality.items()}}
            for u, user in enumerate(user_ids)
        ]

    # ---- user-facing -----------------------------------------------------------------------------
    def _known_items(self, history: Sequence[Any]) -> list[Any]:
        """``history`` without the ids the catalogue does not know (logged as a warning)."""
        catalog = self.tokenizer.catalog
        unknown = [item for item in history if item not in catalog]
        if unknown:
            logger.warning("ignoring %d item id(s) not in the catalogue: %s", len(unknown),
                           ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else ""))
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

    @property
    def trained_rows(self) -> int:
        """Catalogue rows the generator was trained on; rows past it were added later (``add_items``)."""
        return self.train_config.get("fingerprint", {}).get("trained_rows", len(self.item_prior.get("counts") or [])
                                                            or len(self.tokenizer.catalog))

    def add_items(self, item_ids: Sequence[Any], embeddings: dict[str, np.ndarray] | None = None,
                  semantic_ids: dict[str, np.ndarray] | None = None) -> None:
        """Put new items in the catalogue and the decoding constraints without changing any weight.

        ``embeddings`` (modality -> [n_new, d], NaN rows = the item lacks it): the model's quantizer gives
        them IDs, unique against the catalogue and among themselves. Or ``semantic_ids`` (modality ->
        [n_new, levels], a row of -1 = lacking it): checked against the codebooks and the IDs already
        taken. Every modality of the catalogue must be given; nothing changes when anything is refused.
        """
        item_ids = list(item_ids)
        if (embeddings is None) == (semantic_ids is None):
            raise GenRecError("add_items: give either embeddings or semantic_ids")
        catalog = self.tokenizer.catalog
        given = embeddings if embeddings is not None else semantic_ids
        missing = [m for m in catalog.modalities if m not in given]
        unknown = [m for m in given if m not in catalog.modalities]
        if missing or unknown:
            raise GenRecError(f"add_items: the catalogue has modalities {catalog.modalities}; "
                              + (f"missing {missing}" if missing else f"unknown {unknown}"))
        if embeddings is not None:
            if self.quantizer_path is None:
                raise GenRecError("add_items: this model folder has no quantizer to encode embeddings with; pass "
                                  "semantic IDs instead")
            self._check_quantizer_ids()
            try:
                codes = self.quantizer.encode({m: np.asarray(embeddings[m], dtype=np.float32) for m in given},
                                              existing={m: catalog.codes[m] for m in given})
            except ValueError as e:
                raise GenRecError(f"add_items: {e}") from None
        else:
            codes = {m: np.asarray(v, dtype=np.int64) for m, v in semantic_ids.items()}
            for m, new in codes.items():
                if new.ndim != 2 or len(new) != len(item_ids):
                    raise GenRecError(f"add_items: {m} IDs have shape {new.shape}, expected [{len(item_ids)}, levels]")
        trained = self.trained_rows
        # validates ids, duplicates, levels, codebook ranges and IDs already taken; changes nothing if refused
        self.tokenizer.add_items(item_ids, codes)
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
            raise GenRecError(f"no item task predicts {modality!r} IDs from this catalogue's modalities "
                              f"{self.tokenizer.modalities}")
        return task, TASK_MODALITIES[task][0]

    @torch.no_grad()
    def predict_ids(self, modality: str, rows: Sequence[int], num_beams: int = DEFAULT_NUM_BEAMS,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """``modality`` IDs [len(rows), levels] for catalogue ``rows``, read from their other modality's IDs
        by the generator's item-translation task (``item2image`` / ``image2item``, MACRec's explicit
        alignment): the best of a beam search over the IDs catalogue items hold in ``modality``, so every
        prediction is the ID of the item the model finds most alike. Needs a model trained on that task."""
        task, source = self._item_task(modality)
        trained = self.train_config.get("tasks")
        if trained is not None and task not in trained:
            raise GenRecError(f"predicting {modality} IDs needs a generator trained on {task!r}; this one learned "
                              f"{trained} (train with --tasks ...,{task})")
        catalog = self.tokenizer.catalog
        rows = [int(r) for r in rows]
        present = catalog.has_ids(source)
        lacking = [r for r in rows if not present[r]]
        if lacking:
            raise GenRecError(f"rows {lacking[:5]} have no {source} IDs to predict {modality} IDs from")
        if not catalog.has_ids(modality).any():
            raise GenRecError(f"no catalogue item has {modality} IDs: there is no ID to predict")
        constraint = self._constraint((modality,))
        out = np.empty((len(rows), self.tokenizer.num_levels(modality)), dtype=np.int64)
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            batch = self.tokenizer.pad([{"input_ids": self.tokenizer.encode_task_input(task, [r], source)}
                                        for r in part], return_tensors="pt")
            found = constrained_beam_search(self.model, batch["input_ids"].to(self.model.device),
                                            batch["attention_mask"].to(self.model.device), constraint,
                                            num_beams=min(num_beams, constraint.n_leaves), num_return_sequences=1)
            for j, leaf in enumerate(found.leaves[:, 0].tolist()):
                if leaf < 0:  # every continuation scored -inf (a model that never learned the task, say)
                    raise GenRecError(f"row {part[j]}: the generator found no {modality} ID")
                out[start + j] = catalog.codes[modality][constraint.rows_of_leaf(leaf)[0]]
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

    def popular(self, k: int = 10) -> Recommendation:
        """The ``k`` items with the most training interactions (``item_prior.json``), scored by their share;
        what ``recommend`` gives a user without history. Sources say ``popular``."""
        counts = self.item_prior.get("counts")
        if not counts:
            raise GenRecError(f"the history is empty and this pipeline has no {ITEM_PRIOR_FILE} (written by `genrec "
                              "train`) to fall back on popular items; pass at least one known item")
        shares = torch.as_tensor(counts, dtype=torch.float64) / sum(counts)
        top = torch.argsort(shares, descending=True, stable=True)[:k].tolist()
        ids = self.tokenizer.item_ids
        return Recommendation([ids[r] for r in top], [float(shares[r]) for r in top], [["popular"]] * len(top))

    def recommend(self, history: Sequence[Any] | Sequence[Sequence[Any]], k: int = 10, modality: str = "fused",
                  fusion: str = "macrec", exclude_history: bool = True, num_beams: int = DEFAULT_NUM_BEAMS,
                  batch_size: int = DEFAULT_BATCH_SIZE, strict: bool = False) -> Recommendation | list[Recommendation]:
        """Next items for one history (list of item ids, oldest first) or a list of histories.

        Items of the history are left out unless ``exclude_history=False`` (``genrec evaluate`` keeps them,
        as the papers' protocol does). Item ids the catalogue does not know are dropped with a warning
        (``strict=True``: an error); a history that is empty, or holds only unknown ids, gets the most
        popular items (see ``popular``).
        """
        if isinstance(history, (str, bytes)):
            raise GenRecError(f"history must be a list of item ids, got the string {history!r}; "
                              f"for one item write [{history!r}]")
        many = len(history) > 0 and all(isinstance(h, (list, tuple)) for h in history)
        histories = list(history) if many else [history]
        if not strict:
            histories = [self._known_items(h) for h in histories]
        known = [u for u, h in enumerate(histories) if len(h)]
        rows = [self.history_rows(histories[u]) for u in known]
        recs = [None if len(h) else self.popular(k) for h in histories]
        if rows:
            res = self.rank(rows, modality, k, num_beams, fusion, exclude_history, batch_size)
            ids = self.tokenizer.item_ids
            for j, u in enumerate(known):
                recs[u] = Recommendation([ids[r] for r in res.rows[j]], res.scores[j], res.sources(j))
        return recs if many else recs[0]
