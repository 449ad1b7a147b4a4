"""Training, TRL-style: ``generator_config`` (``GenRecTrainingArguments`` + profiles), ``generator_trainer``
(``GenRecTrainer`` + collator), ``generator_run`` (``train_generator``: one run end to end), and the quantizer's
``quantizer_config`` (its settings), ``quantizer_trainer`` and ``quantizer_run``. The model factory is
``genrec.modeling.factory``."""

from ..modeling.factory import build_generator
from .generator_config import GenRecTrainingArguments, make_training_args
from .generator_run import train_generator
from .generator_trainer import GenRecCollator, GenRecTrainer, build_datasets
from .profiles import PROFILES, bundled_profiles, load_profile
from .quantizer_config import QuantizerModelArguments, QuantizerTrainingArguments
from .quantizer_run import train_quantizer
from .quantizer_trainer import QuantizerTrainer

__all__ = [
    "GenRecCollator",
    "GenRecTrainer",
    "GenRecTrainingArguments",
    "PROFILES",
    "QuantizerModelArguments",
    "QuantizerTrainer",
    "QuantizerTrainingArguments",
    "build_datasets",
    "build_generator",
    "bundled_profiles",
    "load_profile",
    "make_training_args",
    "train_generator",
    "train_quantizer",
]
