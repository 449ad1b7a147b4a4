"""The benchmark harness's arms: a training recipe with a name, frozen as data, and its one cached run.

An arm starts from a profile: a file under ``benchmarks/frozen/`` (the recipe as it was when a result was
written; it never follows the shipped profile) or a shipped profile name (``cpu``, ``paper``: what the package
trains today, for the benchmarks that measure the shipped default), with the arm's settings on top, given as
``genrec train`` flags are (so a budget in ``args`` plans the schedule as ``--max-train-minutes`` does).
``train_arm`` resolves the arm into its recipe (``Arm.recipe()``: the starting profile's settings as they are
now, and the arm's), writes it beside the run (``<out>.recipe.json``, and the starting profile as
``<out>.profile.yaml``), trains from those files and nothing else, and reuses a finished run only when its
recipe is the same. Scripts put the recipe into their results, so a result names what trained it;
``Arm.from_recipe`` trains it again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from machine import write_atomic

from genrec.trainers import load_profile, train_generator

FROZEN = Path(__file__).resolve().parent / "frozen"


@dataclass(frozen=True)
class Arm:
    """A recipe: ``profile`` (a file name under ``benchmarks/frozen/``, or a shipped profile name) with
    ``model`` and ``args`` overrides on top; ``about`` says in words what the arm changes."""

    profile: str
    model: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)
    about: str = ""

    def __add__(self, other: Arm) -> Arm:
        """Levers combined: both overrides, ``other``'s winning; both must start from the same profile."""
        if other.profile != self.profile:
            raise ValueError(f"arms on different profiles cannot be combined: {self.profile} and {other.profile}")
        about = " + ".join(a for a in (self.about, other.about) if a)
        return Arm(self.profile, {**self.model, **other.model}, {**self.args, **other.args}, about)

    def with_args(self, **args) -> Arm:
        return Arm(self.profile, self.model, {**self.args, **args}, self.about)

    def recipe(self) -> dict:
        """``{"profile": {"model", "args"}, "model": {...}, "args": {...}}``: the starting profile's settings,
        resolved now, and the arm's own."""
        frozen = FROZEN / self.profile
        return {
            "profile": load_profile(frozen if frozen.is_file() else self.profile),
            "model": dict(self.model),
            "args": dict(self.args),
        }

    @classmethod
    def from_recipe(cls, recipe: dict, folder: Path) -> Arm:
        """The arm that trains ``recipe`` again (its starting profile written into ``folder``)."""
        profile = Path(folder) / "profile.yaml"
        write_atomic(profile, yaml.safe_dump(recipe["profile"], sort_keys=True))
        return cls(str(profile.resolve()), recipe["model"], recipe["args"])


def smoke_settings(max_steps: int | None = None, max_users: int | None = None) -> dict:
    """An arm's extra settings for a smoke run: stop after ``max_steps`` steps, validate on ``max_users`` users
    (each left out when None)."""
    return ({"max_steps": max_steps} if max_steps else {}) | (
        {"rank_eval_users": max_users, "max_eval_samples": max_users} if max_users else {}
    )


def recipe_changes(before: dict, now: dict) -> list[str]:
    """The settings two recipes set differently, as ``profile.args.learning_rate`` or ``model.dropout_rate``."""
    flat = [
        {
            f"{where}{part}.{key}": value
            for where, parts in (("profile.", r.get("profile", {})), ("", r))
            for part in ("model", "args")
            for key, value in parts.get(part, {}).items()
        }
        for r in (before, now)
    ]
    return sorted(k for k in flat[0].keys() | flat[1].keys() if flat[0].get(k) != flat[1].get(k))


def recipe_file(out: Path) -> Path:
    return out.with_name(out.name + ".recipe.json")


def train_arm(arm: Arm, data: Path, out: Path, *, resume: bool = False, **train_options) -> dict:
    """Train ``arm`` on ``data`` into the model folder ``out`` and return its recipe. With ``resume``, a
    finished model in ``out`` trained from the same recipe is kept and an unfinished one resumes from its
    checkpoints; one trained from another recipe is refused, naming the settings that differ.
    ``train_options``: ``train_generator`` keywords that are not settings (e.g. ``quantizer``)."""
    recipe, saved = arm.recipe(), recipe_file(out)
    before = json.loads(saved.read_text()) if saved.is_file() else None
    if resume and before is not None and (changed := recipe_changes(before, recipe)):
        raise SystemExit(f"{out} was trained from another recipe ({saved}; differs in {changed}): run without --resume")
    if resume and before is not None and (out / "config.json").is_file():
        return recipe
    checkpoints = out.with_name(out.name + ".checkpoints")
    if resume and before is None and any(checkpoints.glob("checkpoint-*")):
        raise SystemExit(f"{checkpoints}: checkpoints of an unknown recipe (no {saved.name}): run without --resume")
    resuming = resume and any(checkpoints.glob("checkpoint-*"))
    if not resuming:
        shutil.rmtree(checkpoints, ignore_errors=True)  # another run's: never mixed into this one
    profile = out.with_name(out.name + ".profile.yaml")
    write_atomic(profile, yaml.safe_dump(recipe["profile"], sort_keys=True))
    write_atomic(saved, json.dumps(recipe, indent=1, sort_keys=True))
    train_generator(
        data,
        out,
        profile=str(profile),
        model_overrides=arm.model,
        resume=resuming,
        overwrite=True,
        **arm.args,
        **train_options,
    )
    return recipe
