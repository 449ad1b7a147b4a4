"""``GenRecTrainer`` (a ``transformers.Trainer``) and its collator: the loss of both training modes, the loss
components in the logs, length-bucketed batches, the wall-clock budget's schedule and validation ranking.

Runs wherever Trainer runs: CPU, one GPU, or several with
``accelerate launch -m genrec train --data DIR --out OUT ...`` (per-device batch size; each process
collates its own batches, so the two views of a sample never straddle devices).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Trainer
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import get_last_checkpoint

from .. import ITEM_TASKS, SEQUENTIAL_TASK
from ..errors import GenRecError
from ..generation.constraints import IDConstraint, uses_prefix_softmax
from ..modeling.factory import check_vocab
from ..sequence_tasks import build_sequence_dataset
from ..tasks import PAIRED_TASKS, build_task_dataset
from .budget import MINUTES_KEY, BudgetProgressCallback, TimeBudgetCallback, WallClock, budget_lr_factor
from .checkpoints import checkpoint_step
from .generator_config import GenRecTrainingArguments
from .id_loss import packed_id_loss, prefix_softmax_loss
from .sampling import LengthBucketSampler, TargetBatchSampler

# A callable (model, tokenizer) -> {"ndcg@10": x, ...} evaluated after each evaluation; its keys are
# logged as eval_<key> and may drive early stopping (metric_for_best_model="eval_ndcg@10").
RankingMetrics = Callable[[Any, Any], dict[str, float]]


class GenRecCollator:
    """Flattens task units into examples, pads them with the tokenizer and adds ``pair_ids``.

    Row units (``genrec.tasks``): both views of a paired unit get the unit's position in the batch as
    pair id; others get -1. Sequence units (``genrec.sequence_tasks``) become one encoder row per view
    whose targets are packed into one decoder row (``causal_history.sequence_forward``); ``pair_ids``
    then has one entry per target, shared by the two views' targets at one window position.
    ``score_eos``: the labels close each target with EOS (T5's full softmax scores it; the prefix softmax
    does not, so its decoder rows are one token shorter).
    """

    def __init__(
        self,
        tokenizer,
        pad_to_multiple_of: int | None = None,
        decoder_start_token_id: int | None = None,
        score_eos: bool = True,
    ):
        self.seq2seq = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of)
        self.tokenizer = tokenizer
        self.start = tokenizer.pad_token_id if decoder_start_token_id is None else decoder_start_token_id
        self.score_eos = score_eos

    def __call__(self, units: list[dict]) -> dict[str, torch.Tensor]:
        if units and "views" in units[0]:
            return self._sequences(units)
        features, pair_ids = [], []
        for n, unit in enumerate(units):
            for source, target in zip(unit["input_ids"], unit["labels"]):
                features.append({"input_ids": source, "labels": target})
                pair_ids.append(n if unit["paired"] else -1)
        batch = self.seq2seq(features)
        batch["pair_ids"] = torch.tensor(pair_ids, dtype=torch.long)
        return batch

    def _sequences(self, units: list[dict]) -> dict[str, torch.Tensor]:
        sources, decoder_rows, keys = [], [], []
        for n, unit in enumerate(units):
            for view in unit["views"]:
                sources.append({"input_ids": view["input_ids"]})
                row = {"decoder_input_ids": [], "labels": [], "decoder_history_items": [], "decoder_segment_ids": []}
                for seg, (target, reads, pos) in enumerate(
                    zip(view["targets"], view["history_items"], view["positions"]), 1
                ):
                    labels = target + [self.tokenizer.eos_token_id] if self.score_eos else target
                    row["decoder_input_ids"] += [self.start] + labels[:-1]
                    row["labels"] += labels
                    row["decoder_history_items"] += [reads] * len(labels)
                    row["decoder_segment_ids"] += [seg] * len(labels)
                    keys.append((n, pos) if unit["paired"] else None)
                decoder_rows.append(row)
        # a pair only where both views have the target (a view lacks the targets missing its modality)
        counts = Counter(keys)
        pairs = {k: i for i, k in enumerate(k for k in counts if k is not None and counts[k] == 2)}
        pair_ids = [pairs.get(k, -1) for k in keys]
        batch_groups = [k[0] if k is not None else -1 for k in keys]
        batch = self.tokenizer.pad(sources, return_tensors="pt")
        width = max(len(r["labels"]) for r in decoder_rows)
        pads = {
            "decoder_input_ids": self.tokenizer.pad_token_id,
            "labels": -100,
            "decoder_history_items": 0,
            "decoder_segment_ids": 0,
        }
        for key, pad in pads.items():
            batch[key] = torch.tensor([r[key] + [pad] * (width - len(r[key])) for r in decoder_rows], dtype=torch.long)
        batch["pair_ids"] = torch.tensor(pair_ids, dtype=torch.long)
        batch["pair_groups"] = torch.tensor(batch_groups, dtype=torch.long)
        return batch


def _recipes(dataset):
    return dataset.with_format(None) if isinstance(dataset, Dataset) else dataset


class GenRecTrainer(Trainer):
    """Trainer that logs the loss components (``lm_loss``, ``implicit_loss``) and, when given
    ``ranking_metrics``, adds its figures to every evaluation (the hook for NDCG@10 early stopping)."""

    def __init__(self, *args, ranking_metrics: RankingMetrics | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processing_class is not None:
            check_vocab(self.model, self.processing_class)
        self.ranking_metrics = ranking_metrics
        self._components: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.clock: WallClock | None = None
        self._constraint: IDConstraint | None = None
        budget = getattr(self.args, "max_train_minutes", None)
        if budget is not None:
            self.clock = WallClock()
            self.add_callback(TimeBudgetCallback(self.clock, budget, self.args.eval_every_minutes))
            if any(isinstance(cb, ProgressCallback) for cb in self.callback_handler.callbacks):
                self.remove_callback(ProgressCallback)
                self.add_callback(BudgetProgressCallback(self.clock, budget))

    def _id_constraint(self, device) -> IDConstraint:
        """Every modality's trie in one table (built once; the loss of ``id_softmax="prefix"`` reads it)."""
        if self._constraint is None:
            tok = self.processing_class
            self._constraint = IDConstraint.from_tokenizer(tok, tok.modalities)
        return self._constraint.to(device)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """A budget run's schedule follows the clock (``budget_lr_factor``), not the step count."""
        if self.clock is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        budget, warmup = self.args.max_train_minutes, self.args.warmup_steps
        if warmup >= 1:
            raise GenRecError("with max_train_minutes, warmup_steps must be a share of the budget (< 1)")
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer or self.optimizer, lambda _: budget_lr_factor(self.clock.minutes() / budget, warmup)
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler

    # Samplers read the ``length`` column, which the lazy token transform cannot serve on its own:
    # hand them the recipe rows (same order and length) instead.
    def _get_train_sampler(self, train_dataset=None):
        recipes = _recipes(self.train_dataset if train_dataset is None else train_dataset)
        if isinstance(recipes, Dataset) and "targets" in recipes.column_names:  # sequence units
            return TargetBatchSampler(
                recipes["length"],
                recipes["targets"],
                self.args.per_device_train_batch_size,
                self.args.world_size,
                self.args.process_index,
            )
        if self.args.batching == "length_buckets" and isinstance(recipes, Dataset):
            groups = shares = None
            if self.args.task_weights:  # a unit's share is its (first) task's: paired tasks share one weight
                groups = recipes["unit"]
                shares = [self.args.task_weights.get(u.split("+")[0], 1.0) for u in recipes.features["unit"].names]
            return LengthBucketSampler(
                recipes["length"],
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                groups=groups,
                shares=shares,
            )
        return super()._get_train_sampler(recipes)

    def _get_eval_sampler(self, eval_dataset):
        return super()._get_eval_sampler(_recipes(eval_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "decoder_history_items" in inputs:
            loss, outputs = self._sequence_loss(model, inputs)
        else:
            loss, outputs = self._row_loss(model, inputs, num_items_in_batch)
        if model.training:
            for key in ("lm_loss", "implicit_loss"):
                value = outputs.get(key) if isinstance(outputs, dict) else None
                if value is not None:
                    self._components[key].append(value.detach())
        return (loss, outputs) if return_outputs else loss

    def _sequence_loss(self, model, inputs):
        """A batch of sequence units: one forward, the ID loss of every target (``packed_id_loss``)."""
        outputs = model(**inputs)
        unwrapped = self.accelerator.unwrap_model(model)
        states = outputs["target_states"]
        constraint = self._id_constraint(states.device) if uses_prefix_softmax(unwrapped.config) else None
        lm = packed_id_loss(
            states, inputs["labels"], unwrapped.get_output_embeddings(), constraint, self.args.id_label_smoothing
        )
        implicit = outputs.get("implicit_loss")
        outputs["lm_loss"] = lm
        return (lm if implicit is None else lm + unwrapped.config.implicit_weight * implicit), outputs

    def _row_loss(self, model, inputs, num_items_in_batch):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        config = self.accelerator.unwrap_model(model).config
        if uses_prefix_softmax(config):
            constraint = self._id_constraint(outputs["logits"].device)
            lm = prefix_softmax_loss(outputs["logits"], inputs["labels"], constraint, self.args.id_label_smoothing)
            implicit = outputs.get("implicit_loss")
            loss = lm if implicit is None else lm + config.implicit_weight * implicit
            outputs["lm_loss"] = lm
        return loss, outputs

    def _issue_warnings_after_load(self, load_result) -> None:
        """Tied weights (the token tables and ``lm_head`` are one tensor, saved once) are not missing keys: they
        are tied again. Only keys that really are missing are warned about (Trainer warned about these on every
        best-model load and resume)."""
        model = self.accelerator.unwrap_model(self.model)
        tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
        missing = [k for k in load_result.missing_keys if k not in tied]
        if len(missing) < len(load_result.missing_keys):
            model.tie_weights()
        super()._issue_warnings_after_load(type(load_result)(missing, load_result.unexpected_keys))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._components:  # a training log: add the mean components since the last one
            for key, values in self._components.items():
                logs[key] = round(self.accelerator.gather(torch.stack(values).mean()).mean().item(), 4)
            self._components.clear()
        if self.clock is not None:
            logs[MINUTES_KEY] = round(self.clock.minutes(), 3)
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint=None, **kwargs):
        """As Trainer.train; after a resume, ``train_loss`` is the mean over the whole run, not only
        the resumed steps (the steps before come from the checkpoint's logged losses)."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        # read before training: checkpoint rotation may delete the resumed checkpoint during the run
        start = checkpoint_step(resume_from_checkpoint) if resume_from_checkpoint else None
        output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        if start is None or output.global_step <= start:
            return output
        logged = [(e["step"], e["loss"]) for e in self.state.log_history if "loss" in e and e["step"] <= start]
        if not logged:
            return output
        # each logged loss is the mean since the log before it: weight by that window
        windows = [step - prev for prev, step in zip([0] + [s for s, _ in logged[:-1]], [s for s, _ in logged])]
        before = sum(w * loss for w, (_, loss) in zip(windows, logged)) / sum(windows)
        total = (before * start + output.training_loss * (output.global_step - start)) / output.global_step
        output.metrics["train_loss"] = total
        return type(output)(output.global_step, total, output.metrics)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.ranking_metrics is not None:
            model = self.accelerator.unwrap_model(self.model)
            with plain_forward(model):
                ranked = self.ranking_metrics(model, self.processing_class)
            for key, value in ranked.items():
                output.metrics[f"{metric_key_prefix}_{key}"] = float(value)
        return output


@contextmanager
def plain_forward(model):
    """Rank in the weights' own precision, as the saved model ranks: under bf16, accelerate wraps the model's
    forward in autocast for the whole run (keeping the plain one as ``_original_forward``), and the beam search's
    decoder steps call that forward."""
    wrapped = model.__dict__.get("forward")
    plain = model.__dict__.get("_original_forward")
    if wrapped is None or plain is None:
        yield
        return
    model.forward = plain
    try:
        yield
    finally:
        model.forward = wrapped


def build_datasets(data, tokenizer, args: GenRecTrainingArguments):
    """Train units for every selected task (rows or sequence windows, ``training_mode``); validation: the
    seqrec/seqimage rows of (a sample of) users."""
    item_rows = read_item_task_rows(args.item_task_items, tokenizer, args.tasks) if args.item_task_items else None
    if args.training_mode == "sequences":  # every item but each user's validation and test targets
        train = build_sequence_dataset(
            [seq[:-2] for seq in data.sequences.values()],
            tokenizer,
            args.tasks,
            args.max_history,
            args.pair_views,
            item_rows,
        )
    else:
        train = build_task_dataset(
            data.splits["train"],
            tokenizer,
            args.tasks,
            args.max_history,
            args.pair_views,
            item_rows,
            args.history_dropout,
            args.seed,
        )
    valid = data.splits["valid"]
    if args.max_eval_samples is not None and args.max_eval_samples < len(valid):
        valid = valid.shuffle(seed=args.seed).select(range(args.max_eval_samples))
    eval_tasks = [t for t in args.tasks if t in PAIRED_TASKS] or list(args.tasks)
    return train, build_task_dataset(valid, tokenizer, eval_tasks, args.max_history, args.pair_views)


def read_item_task_rows(path: str | Path, tokenizer, tasks: Sequence[str]) -> list[int]:
    """Catalogue rows of the item ids listed in ``path`` (one per line; blank lines skipped); each must be a
    catalogue item, listed once, with text and image IDs, as the item tasks read one and predict the other."""
    path = Path(path)
    if not set(tasks) & set(ITEM_TASKS):
        raise GenRecError(f"item_task_items={str(path)!r} but the run trains no item task ({list(tasks)})")
    if not path.is_file():
        raise GenRecError(f"item_task_items: no file {path}")
    codes = tokenizer.catalog.codes
    rows, seen = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = tokenizer.catalog.row(line.strip())
        except GenRecError as e:
            raise GenRecError(f"{path}:{n}: {e}") from None
        if row in seen:
            raise GenRecError(f"{path}:{n}: item {line.strip()!r} is listed twice (first on line {seen[row]})")
        lacking = [m for m in ("text", "image") if m in codes and codes[m][row, 0] < 0]
        if lacking:
            raise GenRecError(f"{path}:{n}: item {line.strip()!r} has no {' or '.join(lacking)} IDs for the item tasks")
        seen[row] = n
        rows.append(row)
    if not rows:
        raise GenRecError(f"item_task_items: {path} lists no item")
    return rows


def ranked_modality(tasks: Sequence[str]) -> str:
    """The ranking a generator trained on ``tasks`` is judged by: fused when it learned both sequential
    tasks, else the one it learned."""
    learned = [m for m, t in SEQUENTIAL_TASK.items() if t in tasks]
    return "fused" if len(learned) == 2 else (learned or ["text"])[0]


def validation_ranker(data, args: GenRecTrainingArguments) -> RankingMetrics:
    """NDCG@10 / HR@10 / coverage@10 on a fixed sample of ``args.rank_eval_users`` validation users, ranked
    with the fast constrained decoder (20 beams) the way ``genrec evaluate`` ranks test users."""
    from ..eval import ranking_metrics
    from ..eval.evaluation import TOP_K
    from ..pipeline import GenRecPipeline

    valid = data.splits["valid"]
    if args.rank_eval_users < len(valid):
        valid = valid.shuffle(seed=args.seed).select(range(args.rank_eval_users))
    histories, targets = valid["history"], valid["target"]
    modality = ranked_modality(args.tasks)

    def rank(model, tokenizer) -> dict[str, float]:
        res = GenRecPipeline(model, tokenizer, max_history=args.max_history).rank(histories, modality=modality, k=TOP_K)
        m = ranking_metrics(res.rows, targets, ks=(TOP_K,), n_items=data.n_items)
        return {"ndcg@10": m["NDCG@10"], "hr@10": m["HR@10"], "coverage@10": m["coverage@10"]}

    return rank


def check_finite_weights(trainer: GenRecTrainer) -> None:
    """Refuse to write a diverged model: any NaN or infinite weight after training is an error naming the
    settings that usually cause it (before the output folder is written)."""
    from ..utils import nonfinite_parameters

    bad = nonfinite_parameters(trainer.model)
    if bad:
        args = trainer.args
        raise GenRecError(
            f"training diverged: {len(bad)} weight tensors hold NaN or inf after step "
            f"{trainer.state.global_step} (first: {bad[0]}); lower --lr (was "
            f"{args.learning_rate}) or clip gradients with --max-grad-norm (was {args.max_grad_norm}); "
            "nothing was written"
        )
