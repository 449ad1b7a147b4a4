"""Training, TRL-style: ``generator_config`` (``GenRecTrainingArguments`` + profiles), ``generator_trainer``
(``GenRecTrainer`` + collator), ``generator_run`` (``train_generator``: one run end to end), and the quantizer's
``quantizer_trainer``. The model factory is ``genrec.modeling.factory``."""

from ..modeling.factory import build_generator
from .generator_config import GenRecTrainingArguments, make_training_args
from .generator_run import train_generator
from .generator_trainer import GenRecCollator, GenRecTrainer, build_datasets
from .profiles import PROFILES, bundled_profiles, load_profile
from .quantizer_run import train_quantizer
from .quantizer_trainer import QuantizerTrainer, QuantizerTrainingArguments

__all__ = [
    "GenRecCollator",
    "GenRecTrainer",
    "GenRecTrainingArguments",
    "PROFILES",
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
