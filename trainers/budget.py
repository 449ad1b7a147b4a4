"""Training to a wall-clock budget (``max_train_minutes``): a clock, a schedule on it, and a callback.

A budget run does not know how many steps it will get, so its learning-rate schedule runs on the
clock: linear warmup over the first ``warmup`` share of the budget, then cosine decay that reaches 0
when the budget is spent. The run therefore ends annealed whatever the machine's speed. Evaluation
(and a checkpoint) happens every ``eval_every`` minutes and once more at the end, so the best
checkpoint on the validation ranking metric can be kept. Minutes count from the start of
``Trainer.train`` and include evaluation: the budget is the time a user waits. They survive
``--resume`` (read back from the checkpoint's log history).
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

MINUTES_KEY = "train_minutes"  # in every log entry of a budget run (the learning curve's x axis)


class WallClock:
    """Minutes of training so far: ``offset`` (before a resume) + time since ``start()``."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._t0: float | None = None

    def start(self, offset: float = 0.0) -> None:
        self.offset, self._t0 = offset, time.monotonic()

    def minutes(self) -> float:
        return self.offset + (0.0 if self._t0 is None else (time.monotonic() - self._t0) / 60)


def learning_curve(log_history: list[dict]) -> list[dict]:
    """(minutes, validation NDCG@10) at each evaluation of a budget run, from Trainer's log history."""
    return [
        {"minutes": e[MINUTES_KEY], "valid_ndcg@10": e["eval_ndcg@10"]}
        for e in log_history
        if "eval_ndcg@10" in e and MINUTES_KEY in e
    ]


def budget_lr_factor(fraction: float, warmup: float) -> float:
    """Learning-rate multiplier at ``fraction`` of the budget: linear warmup, then cosine to 0."""
    if fraction < warmup:
        return fraction / warmup
    progress = min(1.0, (fraction - warmup) / max(1e-9, 1.0 - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class TimeBudgetCallback(TrainerCallback):
    """Stops training at ``budget`` minutes and asks for an evaluation + checkpoint every ``eval_every``
    minutes and at the stop."""

    def __init__(self, clock: WallClock, budget: float, eval_every: float):
        if budget <= 0 or eval_every <= 0:
            raise ValueError(f"budget and evaluation interval must be > 0 minutes, got {budget} and {eval_every}")
        self.clock, self.budget, self.eval_every = clock, budget, eval_every
        self.next_eval = eval_every

    def on_train_begin(self, args, state, control, **kwargs):
        done = max((e.get(MINUTES_KEY, 0.0) for e in state.log_history), default=0.0)
        self.clock.start(offset=done)
        self.next_eval = (math.floor(done / self.eval_every) + 1) * self.eval_every

    def on_step_end(self, args, state, control, **kwargs):
        minutes = self.clock.minutes()
        if minutes >= self.budget:
            control.should_training_stop = True
        if minutes >= self.budget or minutes >= self.next_eval:
            control.should_evaluate = control.should_save = True
            while self.next_eval <= minutes:
                self.next_eval += self.eval_every
        return control


class BudgetProgressCallback(ProgressCallback):
    """Trainer's progress bar in minutes of the budget. A budget run's step count is only a ceiling Trainer
    needs (``max_steps``), so the step bar showed hundreds of thousands of steps and an ETA of days; this one
    fills with the clock and shows the step reached. Trainer's log lines print as before."""

    def __init__(self, clock: WallClock, budget: float):
        super().__init__()
        self.clock, self.budget = clock, budget

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(
                total=self.budget,
                initial=min(self.clock.minutes(), self.budget),
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:g} min [{elapsed}<{remaining}{postfix}]",
            )

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar.set_postfix_str(f"step {state.global_step}", refresh=False)
            self.training_bar.update(min(self.clock.minutes(), self.budget) - self.training_bar.n)
