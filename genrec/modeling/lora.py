"""LoRA fine-tuning of a trained generator on a new dataset or new items (PEFT), and loading it back.

Only the adapter is saved: LoRA matrices on T5's attention projections plus, through PEFT's
``trainable_token_indices``, the embedding rows of semantic-ID tokens that are new to the base model
(rows added when the vocabulary grows, and the code tokens that the new items' IDs use).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch

from ..errors import GenRecError
from ..layout import ADAPTER_CONFIG_FILE
from ..utils import no_hf_progress_bars
from . import embedding_rows

# T5 attention projections (PEFT's own default for T5 is q, v; k and o add capacity at little cost).
DEFAULT_TARGET_MODULES = ["q", "k", "v", "o"]


def new_token_indices(base_tokenizer, tokenizer) -> list[int]:
    """Token ids to train: rows beyond the base vocabulary, and the ID tokens of items the base lacks.

    Raises if the vocabularies disagree on a shared id (the adapter would read the wrong rows).
    """
    base_vocab, vocab = base_tokenizer.get_vocab(), tokenizer.get_vocab()
    clash = [t for t, i in base_vocab.items() if vocab.get(t) != i]
    if clash:
        raise GenRecError(
            f"the new tokenizer changes {len(clash)} token ids of the base model's vocabulary (e.g. {clash[:3]}); "
            "build it with the same tasks, modalities, levels and codebook sizes as the base"
        )
    indices = set(range(len(base_tokenizer), len(tokenizer)))
    known = {str(i) for i in base_tokenizer.item_ids}
    new_rows = [r for r, i in enumerate(tokenizer.item_ids) if str(i) not in known]
    for m in tokenizer.modalities:
        ids = tokenizer.item_token_ids(m)[new_rows]
        indices.update(int(t) for t in ids[ids >= 0].unique())
    return sorted(indices)


def build_lora_model(
    base: str | Path,
    tokenizer,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    implicit: bool = True,
    target_modules: list[str] | None = None,
    seed: int = 42,
):
    """A PEFT LoRA model over the generator at ``base`` (folder or Hub repo), sized for ``tokenizer``.

    r 8 / alpha 16 / dropout 0.05: common LoRA defaults (our choice; MACRec has no LoRA setting).
    """
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from .. import tokenizer as _register_tokenizer  # noqa: F401  (AutoTokenizer registration)

    # A local base is recorded by absolute path (adapter_config.json's base_model_name_or_path), so the
    # adapter loads from any working directory; a Hub id stays as given.
    base = str(Path(base).resolve()) if Path(base).is_dir() else str(base)
    try:
        with no_hf_progress_bars():
            model = AutoModelForSeq2SeqLM.from_pretrained(base, trust_remote_code=False)
        indices = new_token_indices(AutoTokenizer.from_pretrained(base, trust_remote_code=False), tokenizer)
    except (OSError, ValueError) as e:  # not a model folder: transformers' several-line messages, cut to one
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GenRecError(f"--base {base}: not a genrec generator folder or Hub repo ({first})") from None
    if embedding_rows(model) < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    if not implicit:
        model.config.implicit_weight = 0.0
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules or DEFAULT_TARGET_MODULES,
        trainable_token_indices=indices or None,
    )
    torch.manual_seed(seed)  # LoRA's A matrices are drawn from the global generator
    with _peft_reads_a_deprecated_property():
        return get_peft_model(model, config)


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def load_generator(path: str | Path, **kwargs):
    """A generator folder, or a LoRA adapter folder (its base is loaded and resized to the adapter's tokenizer)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from .. import tokenizer as _register_tokenizer  # noqa: F401

    path = Path(path)
    if not is_adapter_folder(path):
        return AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=False, **kwargs)
    from peft import PeftModel

    base = json.loads((path / ADAPTER_CONFIG_FILE).read_text())["base_model_name_or_path"]
    model = AutoModelForSeq2SeqLM.from_pretrained(base, trust_remote_code=False, **kwargs)
    vocab = len(AutoTokenizer.from_pretrained(path, trust_remote_code=False))
    if embedding_rows(model) < vocab:
        model.resize_token_embeddings(vocab)
    with _peft_reads_a_deprecated_property():
        return PeftModel.from_pretrained(model, path)


@contextlib.contextmanager
def _peft_reads_a_deprecated_property():
    """PEFT's wrapper reads ``model.is_gradient_checkpointing``, which transformers 5 deprecated with a
    FutureWarning on every adapter built or loaded; the user can do nothing about it, so it is not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
