"""Non-generative reference baselines, scored by the same ``genrec.eval`` code as the generator.

Each is a ``Recommender``: ``fit(data)`` on a ``genrec.data.GenRecData``, then ``rank(histories, k,
exclude_history)`` returns the top-``k`` catalogue rows per history (best first), the calling convention
of ``GenRecPipeline.rank``; ``genrec.eval.evaluation.evaluate_ranker`` scores any of them on a split.
"""

from .base import Recommender
from .popularity import PopularityRecommender
from .sasrec import SASRec, SASRecConfig, SASRecRecommender

__all__ = ["PopularityRecommender", "Recommender", "SASRec", "SASRecConfig", "SASRecRecommender"]
