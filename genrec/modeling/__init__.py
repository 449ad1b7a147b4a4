"""The generator: a T5 encoder-decoder over semantic-ID tokens. The model classes load on first use (they
import T5's modeling code); the Auto classes are registered by ``genrec.auto_registration``."""

from .configuration_genrec_t5 import GenRecT5Config

_MODELING = ("GenRecSeq2SeqLMOutput", "GenRecT5ForConditionalGeneration")


def __getattr__(name: str):
    if name in _MODELING:
        from . import modeling_genrec_t5

        return getattr(modeling_genrec_t5, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def embedding_rows(model) -> int:
    """Rows of the input embedding table, also through PEFT's wrappers (a LoRA model with trainable
    token rows wraps the table in a module without ``num_embeddings``)."""
    return int(model.get_input_embeddings().weight.shape[0])


__all__ = ["GenRecSeq2SeqLMOutput", "GenRecT5Config", "GenRecT5ForConditionalGeneration", "embedding_rows"]
