"""The cross-modal quantizer: item embeddings -> unique semantic IDs per modality (MACRec, first half)."""

from .collisions import collision_rate, resolve_collisions
from .config import CrossModalRQVAEConfig

# The Auto classes: genrec.auto_registration. The model loads on first use (transformers' PreTrainedModel).
_MODEL = ("CrossModalRQVAE", "CrossModalRQVAEOutput")


def __getattr__(name: str):
    if name in _MODEL:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CrossModalRQVAE", "CrossModalRQVAEConfig", "CrossModalRQVAEOutput", "collision_rate", "resolve_collisions"]
