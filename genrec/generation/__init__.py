"""Decoding: trie-constrained generation, the fixed-length fast path, and fusion of modalities."""

from .beam_search import BeamSearchOutput, constrained_beam_search
from .constraints import IDConstraint, TrieConstrainedLogitsProcessor
from .fusion import FUSION_RULES, fuse

__all__ = [
    "BeamSearchOutput",
    "FUSION_RULES",
    "IDConstraint",
    "TrieConstrainedLogitsProcessor",
    "constrained_beam_search",
    "fuse",
]
