"""Dataset directories: loading with leave-one-out splits, synthetic data, raw-data preparation."""

from .loading import DEFAULT_MAX_HISTORY, MIN_INTERACTIONS, GenRecData, leave_one_out, load_dataset_dir

__all__ = ["DEFAULT_MAX_HISTORY", "MIN_INTERACTIONS", "GenRecData", "leave_one_out", "load_dataset_dir"]
