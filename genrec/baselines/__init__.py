"""Non-generative reference baselines, scored by the same ``genrec.eval`` code as the generator.

Every baseline takes a ``genrec.data.GenRecData`` and returns, per user of a split, a ranked list of
catalogue row indices (best first).
"""

from .popularity import popularity_rank
from .sasrec import SASRec, SASRecConfig, sasrec_rank, train_sasrec

__all__ = ["SASRec", "SASRecConfig", "popularity_rank", "sasrec_rank", "train_sasrec"]
