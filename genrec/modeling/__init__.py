"""The generator: a T5 encoder-decoder over semantic-ID tokens."""

from transformers import AutoConfig, AutoModelForSeq2SeqLM

from .configuration import GenRecT5Config
from .modeling import GenRecSeq2SeqLMOutput, GenRecT5ForConditionalGeneration

AutoConfig.register(GenRecT5Config.model_type, GenRecT5Config, exist_ok=True)
AutoModelForSeq2SeqLM.register(GenRecT5Config, GenRecT5ForConditionalGeneration, exist_ok=True)

__all__ = ["GenRecSeq2SeqLMOutput", "GenRecT5Config", "GenRecT5ForConditionalGeneration"]
