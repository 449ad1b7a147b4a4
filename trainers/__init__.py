from .generator_trainer import (
    PROFILES,
    GenRecCollator,
    GenRecTrainer,
    GenRecTrainingArguments,
    build_generator,
    train_generator,
)
from .quantizer_trainer import QuantizerTrainer, QuantizerTrainingArguments, train_quantizer
