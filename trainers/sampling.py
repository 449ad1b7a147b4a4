"""``LengthBucketSampler``: batches of similar history length, in random order.

transformers' ``LengthGroupedSampler`` sorts each megabatch (50 batches) by length and emits its
batches longest first, so training walks in 50-step cycles from long to short histories. Here the
same length-homogeneous batches are shuffled as whole batches: the padding saving stays, the cycle
goes (benchmarks/results/parity-macrec.md measures both against random batches).

With ``groups`` and ``shares`` (the task of each row, and the share of each task's rows to use), each
epoch draws a fresh random subset of every task with share < 1: a cheap task schedule that spends
fewer steps on auxiliary tasks without dropping them.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import BatchRebalanceSampler


class LengthBucketSampler(Sampler[int]):
    """Indices such that every run of ``batch_size`` consecutive indices has similar ``lengths``.

    Per epoch: a random permutation, cut into megabatches of ``megabatch_batches`` batches, each sorted
    by length and cut into batches; then all batches are shuffled. The randomness comes from
    ``generator``, or torch's global generator (seeded by Trainer), so the order is reproducible per
    seed and new every epoch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        megabatch_batches: int = 50,
        generator: torch.Generator | None = None,
        groups: Sequence[int] | None = None,
        shares: Sequence[float] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.megabatch = batch_size * max(1, megabatch_batches)
        self.generator = generator
        self.members: list[tuple[torch.Tensor, int]] = []  # (rows of a group, rows drawn per epoch)
        if shares is not None:
            groups = torch.as_tensor(list(groups), dtype=torch.long)
            if len(groups) != len(self.lengths):
                raise ValueError(f"{len(groups)} groups for {len(self.lengths)} rows")
            for g, share in enumerate(shares):
                if not 0 < share <= 1:
                    raise ValueError(f"shares must be in (0, 1], got {share} for group {g}")
                rows = torch.nonzero(groups == g).flatten()
                self.members.append((rows, max(1, round(share * len(rows))) if len(rows) else 0))

    def __len__(self) -> int:
        return sum(n for _, n in self.members) if self.members else len(self.lengths)

    def _epoch_rows(self) -> torch.Tensor:
        """This epoch's rows in random order: all of them, or each group's share drawn afresh."""
        if not self.members:
            return torch.randperm(len(self.lengths), generator=self.generator)
        drawn = [
            rows if n == len(rows) else rows[torch.randperm(len(rows), generator=self.generator)[:n]]
            for rows, n in self.members
        ]
        rows = torch.cat(drawn)
        return rows[torch.randperm(len(rows), generator=self.generator)]

    def batches(self) -> list[list[int]]:
        """One epoch's batches (draws from the generator)."""
        perm = self._epoch_rows()
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


class TargetBatchSampler(BatchRebalanceSampler):
    """Batches of sequence units (``genrec.sequence_tasks``) that hold about ``batch_targets`` next-item
    targets each, of similar window length, in random order; for each of ``num_processes`` processes its
    share (every ``num_processes``-th batch, from the same draw on every process).

    A unit holds 1 to ``max_history`` targets, so a fixed number of units per batch would give one batch 20
    times the targets of another, and the batch-mean loss would weigh a target of a short sequence 20 times
    one of a long sequence. With batches of equal target counts every target weighs what it weighs in row
    training. A ``BatchRebalanceSampler`` only so that ``Trainer`` uses it as the data loader's batch sampler.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        targets: Sequence[int],
        batch_targets: int,
        num_processes: int = 1,
        process_index: int = 0,
        megabatch_batches: int = 50,
        generator: torch.Generator | None = None,
    ):
        if batch_targets < 1:
            raise ValueError(f"batch_targets must be >= 1, got {batch_targets}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        self.batch_targets, self.megabatch = batch_targets, batch_targets * max(1, megabatch_batches)
        self.num_processes, self.process_index, self.generator = num_processes, process_index, generator
        # batches per epoch vary by one or two with the draw: the count of one fixed draw stands for them
        self._len = len(self._cut(torch.randperm(len(self.targets), generator=torch.Generator().manual_seed(0))))

    def _cut(self, perm: torch.Tensor) -> list[torch.Tensor]:
        """Megabatches of ~``megabatch`` targets, each sorted by length and cut at every ``batch_targets``."""
        batches = []
        mega_of = (self.targets[perm].cumsum(0) - 1) // self.megabatch
        for m in torch.unique_consecutive(mega_of):
            mega = perm[mega_of == m]
            mega = mega[torch.sort(self.lengths[mega], descending=True, stable=True).indices]
            cut = (self.targets[mega].cumsum(0) - 1) // self.batch_targets
            batches += [mega[cut == c] for c in torch.unique_consecutive(cut)]
        return batches

    def __len__(self) -> int:
        return self._len // self.num_processes

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._cut(torch.randperm(len(self.targets), generator=self.generator))
        order = torch.randperm(len(batches), generator=self.generator).tolist()
        usable = len(order) - len(order) % self.num_processes  # every process steps alike
        for b in order[self.process_index : usable : self.num_processes]:
            yield batches[b].tolist()
