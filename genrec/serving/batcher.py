"""Micro-batching: concurrent requests share one ``GenRecPipeline.recommend`` call.

Ranking one history costs almost as much as ranking a batch of them (beam search is dominated by per-step
overhead at this model size), so a service that ranks each request alone gives a fraction of ``rank()``'s
throughput. One thread runs the model: while it ranks a batch, the next one fills. A request that finds the
model idle waits at most ``max_wait_ms`` for company, and only when the previous batch had company (under
load); a lone client never waits.

The model thread should be the thread that loaded the model (``model_thread``): torch's OpenMP pool is per
thread, and a second pool on a 2-core machine slowed every ranking about 1.7x here (``serving.app.serve_model``
loads on it, through ``load_on_model_thread``).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..ranking.config import RankingConfig
from ..ranking.result import Recommendation

DEFAULT_MAX_BATCH = 32  # rank()'s throughput on 2 cores stops growing past about this many users
DEFAULT_MAX_WAIT_MS = 5.0  # a lone request pays at most this for the chance of company


def new_model_thread() -> ThreadPoolExecutor:
    """A one-thread executor for every call into the model (load it there too: module docstring)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrec-model")


def load_on_model_thread(path_or_repo, **load_options):
    """(pipeline, the one-thread executor that loaded it): rank on that executor (module docstring).
    ``load_options``: ``GenRecPipeline.from_pretrained``'s (revision, device, device_map, ...)."""
    from ..pipeline import GenRecPipeline

    thread = new_model_thread()
    pipeline = thread.submit(GenRecPipeline.from_pretrained, path_or_repo, **load_options).result()
    return pipeline, thread


@dataclass
class _Request:
    history: list[Any]
    config: RankingConfig
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """``await batcher.recommend(history, config)`` from many coroutines; each call's result equals
    ``pipeline.recommend(history, config, strict=True)``'s item list (scores to float rounding: batched
    matrix products round differently). Requests with the same ``RankingConfig`` share a batch."""

    def __init__(
        self,
        pipeline,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        on_batch: Callable[[int], None] | None = None,
        model_thread: ThreadPoolExecutor | None = None,
    ):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}")
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch or (lambda size: None)  # told every batch's size (for /metrics)
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._model_thread = model_thread or new_model_thread()
        self._pending = 0
        self._busy = False  # the previous batch had more than one request

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run_batches())

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Answer every request already submitted (up to ``drain_timeout`` seconds), then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while self._pending and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
        self._model_thread.shutdown(wait=True)

    async def recommend(self, history: list[Any], config: RankingConfig) -> Recommendation:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        self._pending += 1
        try:
            await self._queue.put(_Request(list(history), config, future))
            return await future
        finally:
            self._pending -= 1

    async def edit(self, fn, *args):
        """Run ``fn(*args)`` on the model thread, between batches (a catalogue edit never races a ranking)."""
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    async def _next_batch(self) -> list[_Request]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self._busy else 0.0)
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except asyncio.TimeoutError:
                break
        self._busy = len(batch) > 1
        return batch

    async def _run_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            self.on_batch(len(batch))
            groups: dict[str, list[_Request]] = {}
            for req in batch:  # RankingConfig holds a dict, so it is grouped by its JSON
                groups.setdefault(json.dumps(req.config.to_dict(), sort_keys=True), []).append(req)
            for reqs in groups.values():
                outcomes = await loop.run_in_executor(self._model_thread, self._rank_group, reqs[0].config, reqs)
                for req, outcome in zip(reqs, outcomes):
                    if req.future.done():  # the client went away
                        continue
                    if isinstance(outcome, BaseException):
                        req.future.set_exception(outcome)
                    else:
                        req.future.set_result(outcome)

    def _rank_group(self, config: RankingConfig, reqs: list[_Request]) -> list:
        """Recommendations for ``reqs`` in one call; if that fails, one call per request, so a request that
        cannot be answered fails alone (its outcome is the exception)."""
        if len(reqs) > 1:
            try:
                return self.pipeline.recommend([r.history for r in reqs], config, strict=True)
            except Exception:  # noqa: BLE001 - answered one by one below
                pass
        return [self._answer(r.history, config) for r in reqs]

    def _answer(self, history: list[Any], config: RankingConfig):
        try:
            return self.pipeline.recommend(history, config, strict=True)
        except Exception as e:
            return e
