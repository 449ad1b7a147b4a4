"""Training profiles: model-config and ``GenRecTrainingArguments`` defaults, kept as YAML data files.

A profile is a bundled name (``tiny``, ``cpu``, ``paper``: ``trainers/profile_files/<name>.yaml``, each
default with the reason it has that value) or the path of a YAML file of the same shape::

    model: {num_layers: 2, d_ff: 512}     # GenRecT5Config / build_generator keywords
    args: {learning_rate: 2.0e-3}          # GenRecTrainingArguments fields

Explicit CLI flags and keyword arguments override a profile's values.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

import yaml
from transformers import T5Config

from genrec.errors import GenRecError
from genrec.modeling import GenRecT5Config

PROFILE_DIR = Path(__file__).resolve().parent / "profile_files"


def bundled_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _model_keys() -> set[str]:
    own = set(inspect.signature(GenRecT5Config.__init__).parameters) - {"self", "kwargs"}
    return own | set(T5Config().to_dict())


def load_profile(profile: str | Path) -> dict[str, dict[str, Any]]:
    """``{"model": {...}, "args": {...}}`` of a bundled profile name or a YAML file; unknown model keys and a
    malformed file are refused naming the file (unknown ``args`` keys: ``make_training_args``)."""
    path = Path(profile)
    if str(profile) in bundled_profiles():
        path = PROFILE_DIR / f"{profile}.yaml"
    elif path.suffix not in (".yaml", ".yml") or not path.is_file():
        raise GenRecError(f"unknown profile {str(profile)!r}: not one of {bundled_profiles()} nor a YAML file")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise GenRecError(f"{path}: not valid YAML ({e})") from None
    if (
        not isinstance(loaded, Mapping)
        or set(loaded) - {"model", "args"}
        or not all(isinstance(loaded.get(k, {}), Mapping) for k in ("model", "args"))
    ):
        raise GenRecError(
            f"{path}: a profile is a mapping with the sections 'model' and 'args' (mappings), got {loaded!r:.200}"
        )
    model, args = dict(loaded.get("model") or {}), dict(loaded.get("args") or {})
    unknown = sorted(set(model) - _model_keys())
    if unknown:
        raise GenRecError(f"{path}: unknown model settings {unknown} (GenRecT5Config / build_generator keywords)")
    return {"model": model, "args": args}


# The bundled profiles, read once (tests and benchmarks index them by name).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {name: load_profile(name) for name in bundled_profiles()}
