"""Multi-process runs through accelerate / torch.distributed: the process state, and ranking sharded by user.

Launched with ``accelerate launch --multi_gpu --num_processes N`` or ``torchrun --nproc_per_node N``
(one process per GPU, or gloo processes on a CPU-only machine); a plain ``python -m genrec`` is one
process and none of this changes anything.
"""

from __future__ import annotations

import functools
from typing import Sequence


@functools.lru_cache(maxsize=1)
def process_state():
    """accelerate's ``PartialState``; on a machine without CUDA it joins the processes over gloo (accelerate
    only does so when asked for the CPU)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    return process_state().is_main_process


def rank_sharded(pipe, histories: Sequence[Sequence[int]], **rank_kwargs):
    """``pipe.rank(histories, **rank_kwargs)``; with several processes each ranks a contiguous share of
    the users and every process gets the whole result, in user order (identical to one process)."""
    state = process_state()
    if state.num_processes == 1:
        return pipe.rank(histories, **rank_kwargs)
    from accelerate.utils import gather_object

    from .ranking.result import RankResult

    with state.split_between_processes(list(range(len(histories)))) as mine:
        rank_kwargs["progress"] = rank_kwargs.get("progress", False) and state.is_main_process
        local = pipe.rank([histories[i] for i in mine], **rank_kwargs)
    return RankResult.concat(gather_object([local]))
