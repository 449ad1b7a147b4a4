"""Ctrl-C during training: a stop that cannot be lost.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives, and a C extension that
polls for signals in the middle of a call may clear that exception and carry on: the run then trains on as if
nothing had happened (seen in the test suite: a tiny run kept training for minutes after Ctrl-C). Here the
signal also sets a flag that a callback reads after every step and evaluation, so the interrupt surfaces at
the next step boundary at the latest. A second Ctrl-C gets Python's default behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from transformers import TrainerCallback


class InterruptAtStepEnd(TrainerCallback):
    """Raises ``KeyboardInterrupt`` at the first step or evaluation end after ``requested`` was set."""

    def __init__(self) -> None:
        self.requested = False

    def _check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def on_step_end(self, args, state, control, **kwargs):
        self._check()

    def on_evaluate(self, args, state, control, **kwargs):
        self._check()


@contextlib.contextmanager
def interrupts_at_step_end(trainer):
    """For the block, Ctrl-C both raises at once (as usual) and is re-raised at the next step end of
    ``trainer`` if the first was swallowed. Signals belong to the main thread: elsewhere, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    callback = InterruptAtStepEnd()

    def on_sigint(signum, frame):
        callback.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    trainer.add_callback(callback)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        trainer.remove_callback(callback)
