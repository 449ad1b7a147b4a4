"""The cross-modal quantizer: item embeddings -> unique semantic IDs per modality (MACRec, first half)."""

from transformers import AutoConfig, AutoModel

from .collisions import collision_rate, resolve_collisions
from .config import CrossModalRQVAEConfig
from .model import CrossModalRQVAE, CrossModalRQVAEOutput

AutoConfig.register(CrossModalRQVAEConfig.model_type, CrossModalRQVAEConfig, exist_ok=True)
AutoModel.register(CrossModalRQVAEConfig, CrossModalRQVAE, exist_ok=True)

__all__ = ["CrossModalRQVAE", "CrossModalRQVAEConfig", "CrossModalRQVAEOutput", "collision_rate", "resolve_collisions"]
