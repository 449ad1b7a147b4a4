"""Ranking, one module per stage (``GenRecPipeline.rank`` runs them in this order):

- ``config``: ``RankingConfig``, every setting, saved as ``ranking_config.json`` beside the model.
- ``decode``: per modality, the history's IDs feed the generator's sequential task (text: ``<seqrec>``,
  image: ``<seqimage>``; a history lacking some of them may be read in the other modality's IDs through the
  cross-modal task); a trie-constrained beam search (20 beams, MACRec / MQL4GRec) yields IDs, each mapped to
  the item(s) carrying it.
- ``rescore``: every item a list proposed is scored under the other modalities too.
- ``fuse``: the lists are fused (``genrec.generation.fusion``), with ``cold_start`` slots for added items.
- ``result``: ``RankResult`` (rows) and ``Recommendation`` (item ids).
- ``catalogue``: edits without retraining (``add_items``, ``drop_ids``, ``fill_missing_ids``).

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
  empty input has no trained meaning; ``recommend`` gives it the popular items.
"""

from .config import (
    CROSS_MODAL_WEIGHT,
    DEFAULT_BATCH_SIZE,
    DEFAULT_COLD_START_SHARE,
    DEFAULT_NUM_BEAMS,
    HISTORY_COVERAGE_POWER,
    RankingConfig,
)
from .result import RankResult, Recommendation

__all__ = [
    "RankingConfig",
    "RankResult",
    "Recommendation",
    "DEFAULT_NUM_BEAMS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_COLD_START_SHARE",
    "HISTORY_COVERAGE_POWER",
    "CROSS_MODAL_WEIGHT",
]
