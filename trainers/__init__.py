from .generator_trainer import (
    GenRecCollator,
    GenRecTrainer,
    GenRecTrainingArguments,
    build_generator,
    train_generator,
)
from .profiles import PROFILES, bundled_profiles, load_profile
from .quantizer_trainer import QuantizerTrainer, QuantizerTrainingArguments, train_quantizer
