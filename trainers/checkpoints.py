"""Resuming safely: which checkpoint to resume, whether its files are whole, and whether it was trained on
this run's catalogue and tasks, however the checkpoint was named (``--resume`` alone, ``--resume PATH`` or a
checkpoint copied elsewhere)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from transformers import TrainerCallback, TrainerState
from transformers.trainer import TRAINER_STATE_NAME

from ..errors import GenRecError

logger = logging.getLogger("genrec.train")

# In a checkpoint folder and in each checkpoint-N: what the checkpoints were trained on, checked on --resume.
RUN_FINGERPRINT_FILE = "genrec_run.json"
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")


def checkpoint_step(folder: Path) -> int:
    """The global step a complete checkpoint reached; a missing or cut ``trainer_state.json`` is a GenRecError."""
    path = Path(folder) / TRAINER_STATE_NAME
    if not path.is_file():
        raise GenRecError(
            f"--resume: {folder} is not a complete checkpoint (no {TRAINER_STATE_NAME}: the save "
            "was cut short, or this is not a checkpoint-N folder)"
        )
    try:
        return TrainerState.load_from_json(str(path)).global_step
    except (ValueError, TypeError, OSError) as e:
        raise GenRecError(
            f"--resume: {path} is damaged ({type(e).__name__}: {e}); resume from an earlier checkpoint-N"
        ) from None


def check_checkpoint_files(folder: Path) -> int:
    """Refuse a checkpoint whose state or weights are cut or damaged (before Trainer reads them and fails
    with a traceback); returns its step."""
    from safetensors import safe_open

    step = checkpoint_step(folder)
    weights = [Path(folder) / name for name in WEIGHT_FILES if (Path(folder) / name).is_file()]
    if not weights:
        raise GenRecError(f"--resume: {folder} holds no weights ({' or '.join(WEIGHT_FILES)})")
    for path in weights:
        try:  # safetensors checks the header and that the file covers every tensor it lists
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as e:  # SafetensorError, not importable under a stable name
            raise GenRecError(f"--resume: {path} is damaged ({e}); resume from an earlier checkpoint-N") from None
    return step


def last_complete_checkpoint(checkpoint_dir: str | Path) -> Path:
    """The newest ``checkpoint-N`` whose files are whole (``trainer_state.json`` is written last), so a save
    cut short by a kill, or a damaged file, is skipped rather than resumed from."""
    folders = sorted(
        (p for p in Path(checkpoint_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for folder in folders:
        try:
            check_checkpoint_files(folder)
        except GenRecError as e:
            logger.warning("skipping %s: %s", folder.name, str(e).removeprefix("--resume: "))
            continue
        return folder
    raise GenRecError(
        f"--resume: no complete checkpoint in {checkpoint_dir}"
        + (f" ({len(folders)} incomplete or damaged)" if folders else "")
        + "; train without --resume"
    )


def resume_point(resume: str | bool | None, checkpoint_dir: Path, max_steps: int) -> Path | None:
    """The checkpoint to resume (None: a fresh run): the last whole one in ``checkpoint_dir`` for True, or
    the given folder, checked. One already at ``max_steps`` is refused: Trainer would train one step more."""
    if not resume:
        return None
    if resume is True:  # already checked whole while it was chosen
        folder = last_complete_checkpoint(checkpoint_dir)
        step = checkpoint_step(folder)
    else:
        folder = Path(resume)
        if not folder.is_dir():
            raise GenRecError(f"--resume: {folder} is not a folder; give a checkpoint-N folder or --resume alone")
        step = check_checkpoint_files(folder)
    if 0 < max_steps <= step:
        raise GenRecError(
            f"--resume: {folder} is already at step {step}, and --max-steps is {max_steps}: nothing "
            "is left to train; raise --max-steps to train on"
        )
    return folder


def run_fingerprint(tokenizer, tasks, item_task_items: str | None) -> dict:
    """What a run's checkpoints are tied to: catalogue, vocabulary, tasks and the item-task list."""
    items = Path(item_task_items) if item_task_items else None
    return {
        **tokenizer.fingerprint(),
        "tasks": list(tasks),
        "item_task_items": hashlib.sha256(items.read_bytes()).hexdigest()[:16] if items and items.is_file() else None,
    }


def check_resume_fingerprint(resume: Path, record: dict) -> None:
    """Refuse to resume a checkpoint trained on another catalogue, vocabulary, tasks or item-task list (old
    weights and a step count on other rows would train on, silently wrong). The record is read from the
    checkpoint itself, else from the folder holding it; the catalogue is also checked against the tokenizer
    the checkpoint carries, so a checkpoint without any record is still checked. Keys an older record lacks
    are not compared."""
    from ..tokenizer.semantic_id import SemanticIDTokenizer

    found = [p for p in (resume / RUN_FINGERPRINT_FILE, resume.parent / RUN_FINGERPRINT_FILE) if p.is_file()]
    before = json.loads(found[0].read_text(encoding="utf-8")) if found else {}
    if (resume / "catalog.json").is_file():
        before = {**before, **SemanticIDTokenizer.from_pretrained(resume).fingerprint()}
    if not before:
        raise GenRecError(
            f"--resume: {resume} carries neither {RUN_FINGERPRINT_FILE} nor its tokenizer, so "
            "nothing shows it was trained on this catalogue; train without --resume"
        )
    if {k: record.get(k) for k in before} != before:
        raise GenRecError(
            f"--resume: the checkpoint {resume} was trained on catalogue and tasks {before} but "
            f"this run has {record} (another quantizer, dataset, --tasks or --item-task-items); "
            "resume with the same ones, or train without --resume into another --checkpoint-dir"
        )


class RunFingerprintCallback(TrainerCallback):
    """Writes the run's fingerprint into the checkpoint folder and into every checkpoint-N, so a checkpoint
    copied or named on its own is still checked on resume."""

    def __init__(self, record: dict):
        self.text = json.dumps(record)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.output_dir) / RUN_FINGERPRINT_FILE).write_text(self.text, encoding="utf-8")

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / RUN_FINGERPRINT_FILE).write_text(self.text, encoding="utf-8")
