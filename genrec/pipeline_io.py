"""The transformers-style half of ``GenRecPipeline``: loading (``from_pretrained`` with the keywords a
transformers user passes), saving, publishing (``push_to_hub``) and placing (``to``, ``device``, ``dtype``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from . import DEFAULT_MAX_HISTORY
from .errors import GenRecError, read_json_file
from .layout import ITEM_PRIOR_FILE, QUANTIZER_DIR, TRAIN_CONFIG_FILE
from .ranking.config import RankingConfig
from .ranking.loading import check_tokenizer_fits, load_model_and_tokenizer
from .utils import torch_device


def resolve_folder(
    path_or_repo,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    subfolder: str | None = None,
) -> Path:
    """The local folder of a pipeline: the folder given, or the HF-cache snapshot of a Hub repo id; then its
    ``subfolder``."""
    path = Path(path_or_repo)
    if not path.is_dir():
        if path.exists() or str(path_or_repo).startswith((".", "/")):
            raise GenRecError(f"{path_or_repo}: not a pipeline folder")
        from .hub import fetch_from_hub

        path = fetch_from_hub(
            str(path_or_repo), revision, token, cache_dir=cache_dir, local_files_only=local_files_only
        )
    if subfolder:
        path = path / subfolder
        if not path.is_dir():
            raise GenRecError(f"{path_or_repo}: no subfolder {subfolder!r}")
    return path


def placement(device=None, device_map=None) -> torch.device | None:
    """The one device ``device`` / ``device_map`` name (``"auto"``: CUDA where there is one). The generator
    is small enough for one device, so a ``device_map`` spreading it over several is refused."""
    if device is not None and device_map is not None:
        raise GenRecError("give device or device_map, not both")
    if isinstance(device_map, dict):
        devices = {str(d) for d in device_map.values()}
        if len(devices) != 1:
            raise GenRecError(
                f"device_map places the model on {sorted(devices)}; genrec's generator runs on one device"
            )
        device_map = devices.pop()
    if device_map == "auto":
        device_map = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = device if device is not None else device_map
    return None if chosen is None else torch_device(chosen)


def torch_dtype(dtype) -> torch.dtype | None:
    """``dtype`` as a torch dtype (``"bfloat16"``, ``torch.float16``, ...); None or ``"auto"``: as saved."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return None if dtype == "auto" else dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise GenRecError(f"dtype {dtype!r}: not a floating-point torch dtype (float32, bfloat16, float16)")
    return value


class PipelineIO:
    """``from_pretrained`` / ``from_model`` / ``save_pretrained`` / ``push_to_hub`` / ``to`` of ``GenRecPipeline``."""

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str | os.PathLike,
        device: str | torch.device | None = None,
        revision: str | None = None,
        token: str | None = None,
        *,
        dtype=None,
        device_map=None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        subfolder: str | None = None,
    ):
        """Load a pipeline folder, or a Hub repo id holding one (downloaded once into the HF cache, or
        ``cache_dir``; ``local_files_only``: never ask the Hub). ``device`` or ``device_map`` (one device, or
        ``"auto"``), ``dtype`` (``"bfloat16"``, ...) place the generator; by default it stays on the CPU."""
        path = resolve_folder(path_or_repo, revision, token, cache_dir, local_files_only, subfolder)
        model, tok = load_model_and_tokenizer(path)
        pipe = cls.from_model(model, tok, path)
        pipe.name_or_path = str(path_or_repo)
        return pipe.to(placement(device, device_map), torch_dtype(dtype))

    @classmethod
    def from_model(cls, model, tokenizer, folder: str | os.PathLike):
        """A pipeline around a loaded generator and tokenizer, with what else ``folder`` holds (training
        record, item prior, ranking settings, quantizer); checks that the tokenizer is the model's."""
        path = Path(folder)
        train_config = (
            read_json_file(path / TRAIN_CONFIG_FILE, "the training record object")
            if (path / TRAIN_CONFIG_FILE).is_file()
            else {}
        )
        check_tokenizer_fits(path, model, tokenizer, train_config.get("fingerprint"))
        prior = path / ITEM_PRIOR_FILE
        quantizer = path / QUANTIZER_DIR
        # The trainer records its TrainingArguments (max_history among them); older folders: the default.
        max_history = train_config.get("training_args", {}).get("max_history", DEFAULT_MAX_HISTORY)
        pipe = cls(
            model,
            tokenizer,
            max_history=int(max_history),
            quantizer_path=str(quantizer) if quantizer.is_dir() else None,
            train_config=train_config,
            item_prior=read_json_file(prior, "the item prior object") if prior.is_file() else None,
            ranking_config=RankingConfig.load(path, model.generation_config),
        )
        pipe.name_or_path, pipe.folder = str(folder), path
        return pipe

    @property
    def quantizer(self):
        """The quantizer saved beside the generator (loaded on first use; None when the folder has none)."""
        if self._quantizer is None and self.quantizer_path is not None:
            from transformers import AutoModel

            self._quantizer = AutoModel.from_pretrained(self.quantizer_path, trust_remote_code=False)
        return self._quantizer

    def save_pretrained(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the pipeline folder atomically (generator, tokenizer, ranking settings, train config,
        quantizer); an existing ``path`` is replaced only when it is a genrec generator folder, or with
        ``overwrite``."""
        from .utils import atomic_output_dir, no_hf_progress_bars

        with atomic_output_dir(path, "generator", overwrite=overwrite) as tmp, no_hf_progress_bars():
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            self.ranking_config.save(tmp)
            if self.train_config:
                (tmp / TRAIN_CONFIG_FILE).write_text(json.dumps(self.train_config, indent=2), encoding="utf-8")
            if self.item_prior:
                (tmp / ITEM_PRIOR_FILE).write_text(json.dumps(self.item_prior), encoding="utf-8")
            if self._quantizer is not None:
                self._quantizer.save_pretrained(tmp / QUANTIZER_DIR)
            elif self.quantizer_path is not None:
                shutil.copytree(self.quantizer_path, tmp / QUANTIZER_DIR)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None, **kwargs):
        """Publish the pipeline as it is now (added items included) to ``repo_id``, with its model card and
        Inference Endpoints handler (``genrec.hub.push_to_hub``; ``revision``, ``commit_message`` pass on)."""
        from .hub import push_to_hub

        with tempfile.TemporaryDirectory(prefix="genrec-push-") as tmp:
            folder = Path(tmp) / "pipeline"
            self.save_pretrained(folder)
            return push_to_hub(folder, repo_id, private=private, token=token, **kwargs)

    def to(self, device=None, dtype=None):
        """Move (and/or cast) the generator; returns the pipeline."""
        if device is not None:
            self.model.to(torch_device(device) if isinstance(device, str) else device)
        if dtype is not None:
            self.model.to(torch_dtype(dtype))
        return self

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype
