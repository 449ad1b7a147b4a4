"""``LengthBucketSampler``: batches of similar history length, in random order.

transformers' ``LengthGroupedSampler`` sorts each megabatch (50 batches) by length and emits its
batches longest first, so training walks in 50-step cycles from long to short histories. Here the
same length-homogeneous batches are shuffled as whole batches: the padding saving stays, the cycle
goes (benchmarks/results/parity-macrec.md measures both against random batches).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[int]):
    """Indices such that every run of ``batch_size`` consecutive indices has similar ``lengths``.

    Per epoch: a random permutation, cut into megabatches of ``megabatch_batches`` batches, each sorted
    by length and cut into batches; then all batches are shuffled. The randomness comes from
    ``generator``, or torch's global generator (seeded by Trainer), so the order is reproducible per
    seed and new every epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, megabatch_batches: int = 50,
                 generator: torch.Generator | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.megabatch = batch_size * max(1, megabatch_batches)
        self.generator = generator

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        """One epoch's batches (draws from the generator)."""
        perm = torch.randperm(len(self.lengths), generator=self.generator)
        batches = []
        for mega in perm.split(self.megabatch):
            order = torch.sort(self.lengths[mega], descending=True, stable=True).indices
            batches += list(mega[order].split(self.batch_size))
        # Only the last megabatch can end in a short batch; it stays last so that the data loader's
        # consecutive slices of batch_size stay aligned with the buckets.
        tail = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        shuffled = torch.randperm(len(batches), generator=self.generator).tolist()
        return [batches[b].tolist() for b in shuffled] + [t.tolist() for t in tail]

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch
