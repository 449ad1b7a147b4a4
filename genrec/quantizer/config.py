"""``CrossModalRQVAEConfig``: one config for the RQ-VAEs of all modalities, so the set is one artifact."""

from __future__ import annotations

from transformers import PretrainedConfig


class CrossModalRQVAEConfig(PretrainedConfig):
    """Settings of the per-modality RQ-VAEs and of MACRec's cross-modal losses.

    Architecture (one RQ-VAE per entry of ``modalities``; ``input_dims`` aligned with it):

    * ``num_levels`` x ``codebook_size`` = 4 x 256: MQL4GRec / MACRec (``--num_emb_list 256 256 256 256``).
    * ``latent_dim`` 32: MQL4GRec ``--e_dim 32`` (MACRec's runs use 32 too).
    * ``hidden_dims`` [512, 256, 128]: MACRec's CrossRQVAE default ``layers``; MQL4GRec uses
      [2048, 1024, 512, 256, 128, 64], which is ~10x slower on CPU for no gain on 6k items (our choice).
    * ``beta`` 0.25: commitment weight of VQ-VAE / RQ-VAE (MQL4GRec ``--beta``).
    * ``quant_loss_weight`` 1.0: MACRec / MQL4GRec ``--quant_loss_weight``.
    * ``kmeans_init`` / ``kmeans_iters`` 100: MQL4GRec / MACRec defaults (codebooks start at k-means
      centres of the first batch of residuals; we use all training items, which is as cheap on 6k items).
    * ``dead_code_restart``: codes no training item chose during an epoch (or, in a long epoch, during
      the last ``RESTART_EVERY_STEPS`` steps of trainers/quantizer_trainer.py) are moved onto random
      residuals (our choice, as in Jukebox / SoundStream; MACRec has none) to keep utilisation high.

    Cross-modal losses (MACRec defaults; with both off the model is MQL4GRec's independent quantizers):

    * ``use_contrastive``, ``lambda_con`` 0.1, ``tau`` 0.1 (MACRec): InfoNCE on a modality's vector
      entering each level of ``contrastive_levels``; positives are the batch items that share the
      anchor's K-means cluster in the *other* modality. As in MACRec each level's term is added to
      the quantization loss, which is averaged over all L levels (so one level weighs lambda_con / L).
    * ``contrastive_levels`` [0] (**deviation**): level 0's input is the encoder output itself, so by
      default the *latent* is contrasted. MACRec contrasts the residuals entering levels 2..L-1
      (``--begin_cross_layer 2``; ``contrastive_levels=[2, 3]`` or ``begin_cross_level=2`` here).
      Those residuals are the quantization errors of the coarser levels, whose direction depends on
      where an item sits inside its Voronoi cells; pulling them together fights the codebooks. On the
      6,250-item benchmark it never learned and raised raw collisions from 0 to 0.24 with
      0.54-0.78 codebook utilisation (benchmarks/results/quantizer.md). The public MACRec-style code
      we read does not hit this: its straight-through VQ layers detach the residual chain, so no
      gradient reaches the encoder from levels >= 1 and the loss there trains nothing.
    * ``n_clusters`` 512: K of those pseudo-labels (MACRec ``*_kmeans512.json``), computed once per modality.
    * ``id_modalities`` (ours, default none): modalities given as semantic IDs only, without embeddings
      (e.g. released image IDs). They get no RQ-VAE; their items' first ``id_label_levels`` codes
      (default 1) serve as that modality's pseudo-labels, so the trained modalities' contrastive loss
      pulls together items that share them. An RQ-VAE's first level is itself a K-means-like partition
      of the embeddings (256 cells here against MACRec's K=512), so level 1 is the closest stand-in for
      the clusters the embeddings would have given.
    * ``use_alignment``, ``lambda_align`` 0.001, ``align_tau`` 0.1: symmetric InfoNCE between the two
      quantized vectors of one item (MACRec ``recon_contrast_weight`` 0.001, temperature 0.1).
    """

    model_type = "genrec_quantizer"

    # A dataclass field list (transformers >= 5.4 configs); sequences default to tuples, stored as lists.
    modalities: list[str] | tuple[str, ...] = ("text", "image")
    input_dims: list[int] | tuple[int, ...] = (768, 768)
    num_levels: int = 4
    codebook_size: int = 256
    latent_dim: int = 32
    hidden_dims: list[int] | tuple[int, ...] = (512, 256, 128)
    dropout: float = 0.0
    beta: float = 0.25
    quant_loss_weight: float = 1.0
    kmeans_init: bool = True
    kmeans_iters: int = 100
    dead_code_restart: bool = True
    use_contrastive: bool = True
    lambda_con: float = 0.1
    tau: float = 0.1
    contrastive_levels: list[int] | tuple[int, ...] | range = (0,)
    n_clusters: int = 512
    id_modalities: list[str] | tuple[str, ...] = ()
    id_label_levels: int = 1
    use_alignment: bool = True
    lambda_align: float = 0.001
    align_tau: float = 0.1

    def __post_init__(self, begin_cross_level: int | None = None, **kwargs):
        if begin_cross_level is not None:  # MACRec's spelling: levels begin..L-1
            self.contrastive_levels = range(begin_cross_level, self.num_levels)
        self.modalities = list(self.modalities)
        self.input_dims = [int(d) for d in self.input_dims]
        self.hidden_dims = [int(d) for d in self.hidden_dims]
        self.contrastive_levels = sorted({int(lv) for lv in self.contrastive_levels})
        self.id_modalities = list(self.id_modalities)
        self.id_label_levels = int(self.id_label_levels)
        self._check_settings()
        super().__post_init__(**kwargs)
        self.validate()  # PretrainedConfig's own checks, as its __init__ ran them

    def _check_settings(self) -> None:
        """Refuse settings no model can be built from (before ``PretrainedConfig`` stores the rest)."""
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be >= 1 distinct names, got {self.modalities}")
        if len(self.input_dims) != len(self.modalities):
            raise ValueError(f"input_dims {self.input_dims} must have one entry per modality {self.modalities}")
        if self.num_levels < 1 or self.codebook_size < 2 or self.latent_dim < 1:
            raise ValueError("num_levels >= 1, codebook_size >= 2 and latent_dim >= 1 are required")
        if set(self.id_modalities) & set(self.modalities):
            raise ValueError(
                f"id_modalities {self.id_modalities} must differ from the embedded modalities {self.modalities}"
            )
        if self.id_label_levels < 1:
            raise ValueError(f"id_label_levels must be >= 1, got {self.id_label_levels}")
        if any(not 0 <= lv < self.num_levels for lv in self.contrastive_levels):
            raise ValueError(
                f"contrastive_levels {self.contrastive_levels} must be level indices in [0, {self.num_levels})"
            )

    @property
    def cross_modal(self) -> bool:
        """Whether any cross-modal loss is on (needs two or more modalities to have an effect)."""
        return (len(self.modalities) > 1 and (self.use_contrastive or self.use_alignment)) or bool(
            self.id_modalities and self.use_contrastive
        )

    @property
    def contrastive_partners(self) -> list[str]:
        """Modalities whose pseudo-labels the contrastive loss needs: the embedded ones when there are
        two or more, plus every IDs-only one."""
        if not self.use_contrastive:
            return []
        return (self.modalities if len(self.modalities) > 1 else []) + self.id_modalities
