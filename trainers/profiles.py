"""Training profiles: model-config and training-argument defaults, kept as YAML data files, for the generator
(``GenRecT5Config`` / ``GenRecTrainingArguments``) and the quantizer (``CrossModalRQVAEConfig`` /
``QuantizerTrainingArguments``: ``profile_files/quantizer/<name>.yaml``, ``load_profile(name, "quantizer")``).

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
QUANTIZER_PROFILE_DIR = PROFILE_DIR / "quantizer"


def bundled_profiles(kind: str = "generator") -> list[str]:
    """Names of the bundled profiles of ``kind`` ("generator" or "quantizer")."""
    return sorted(p.stem for p in (QUANTIZER_PROFILE_DIR if kind == "quantizer" else PROFILE_DIR).glob("*.yaml"))


def _model_keys() -> set[str]:
    own = set(inspect.signature(GenRecT5Config.__init__).parameters) - {"self", "kwargs"}
    return own | set(T5Config().to_dict())


def _quantizer_keys() -> tuple[set[str], set[str]]:
    """(CrossModalRQVAEConfig fields, QuantizerTrainingArguments fields) a quantizer profile may set."""
    from dataclasses import fields

    from genrec.quantizer import CrossModalRQVAEConfig
    from genrec.trainers.quantizer_config import QuantizerTrainingArguments

    model = set(inspect.signature(CrossModalRQVAEConfig.__init__).parameters) - {"self", "kwargs"}
    return model - {"modalities", "input_dims"}, {f.name for f in fields(QuantizerTrainingArguments)}


def load_profile(profile: str | Path, kind: str = "generator") -> dict[str, dict[str, Any]]:
    """``{"model": {...}, "args": {...}}`` of a bundled profile name or a YAML file; unknown model keys (and, for a
    quantizer profile, unknown args keys) and a malformed file are refused naming the file (a generator's
    unknown ``args`` keys: ``make_training_args``)."""
    path = Path(profile)
    if str(profile) in bundled_profiles(kind):
        path = (QUANTIZER_PROFILE_DIR if kind == "quantizer" else PROFILE_DIR) / f"{profile}.yaml"
    elif path.suffix not in (".yaml", ".yml") or not path.is_file():
        label = "quantizer profile" if kind == "quantizer" else "profile"
        raise GenRecError(f"unknown {label} {str(profile)!r}: not one of {bundled_profiles(kind)} nor a YAML file")
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
    if kind == "quantizer":
        model_keys, arg_keys = _quantizer_keys()
        unknown = sorted(set(model) - model_keys) + sorted(f"args.{k}" for k in set(args) - arg_keys)
        where = "CrossModalRQVAEConfig / QuantizerTrainingArguments fields"
    else:
        unknown, where = sorted(set(model) - _model_keys()), "GenRecT5Config / build_generator keywords"
    if unknown:
        raise GenRecError(f"{path}: unknown settings {unknown} ({where})")
    return {"model": model, "args": args}


# The bundled profiles, read once (tests and benchmarks index them by name).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {name: load_profile(name) for name in bundled_profiles()}
