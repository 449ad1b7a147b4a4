"""The generator: a T5 encoder-decoder over semantic-ID tokens."""

from transformers import AutoConfig, AutoModelForSeq2SeqLM

from .configuration_genrec_t5 import GenRecT5Config
from .modeling_genrec_t5 import GenRecSeq2SeqLMOutput, GenRecT5ForConditionalGeneration

AutoConfig.register(GenRecT5Config.model_type, GenRecT5Config, exist_ok=True)
AutoModelForSeq2SeqLM.register(GenRecT5Config, GenRecT5ForConditionalGeneration, exist_ok=True)


def embedding_rows(model) -> int:
    """Rows of the input embedding table, also through PEFT's wrappers (a LoRA model with trainable
    token rows wraps the table in a module without ``num_embeddings``)."""
    return int(model.get_input_embeddings().weight.shape[0])


__all__ = ["GenRecSeq2SeqLMOutput", "GenRecT5Config", "GenRecT5ForConditionalGeneration", "embedding_rows"]
