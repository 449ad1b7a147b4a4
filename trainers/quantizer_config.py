"""The settings of ``genrec quantize``, TRL-style: ``QuantizerModelArguments`` (the ``CrossModalRQVAEConfig``
fields a command line sets) and ``QuantizerTrainingArguments`` (the optimisation). Every field carries its help
text: ``GenRecParser`` turns each into a flag, and a quantizer profile (``profile_files/quantizer/*.yaml``)
gives their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field


def _setting(default, help_: str):
    return field(default=default, metadata={"help": help_})


@dataclass
class QuantizerModelArguments:
    """Architecture and cross-modal loss settings; None keeps the profile's (else ``CrossModalRQVAEConfig``'s)
    value, whose docstring says where each default comes from."""

    num_levels: int | None = _setting(None, "code levels L (MACRec: 4)")
    codebook_size: int | None = _setting(None, "codes per level M (MACRec: 256)")
    latent_dim: int | None = _setting(None, "latent / code dimension (MQL4GRec: 32)")
    hidden_dims: list[int] | None = _setting(None, "encoder MLP hidden sizes")
    lambda_con: float | None = _setting(None, "weight of the cross-modal contrastive loss (MACRec: 0.1)")
    lambda_align: float | None = _setting(None, "weight of the reconstruction-alignment loss (MACRec: 0.001)")
    tau: float | None = _setting(None, "contrastive temperature (MACRec: 0.1)")
    contrastive_levels: list[int] | None = _setting(
        None, "0-based levels whose input gets the contrastive loss (0: the encoder output; MACRec's form: 2,3)"
    )
    n_clusters: int | None = _setting(None, "K of the K-means pseudo-labels (MACRec: 512)")
    id_label_levels: int | None = _setting(
        None, "ID prefix length that defines an IDs-only modality's pseudo-label (default 1)"
    )


@dataclass
class QuantizerTrainingArguments:
    """Optimisation settings. lr 1e-3, batch 1024, AdamW weight decay 1e-4: MACRec / MQL4GRec.
    epochs 300 (MACRec runs 1000 on a GPU) and eval_every 10 (MACRec: 2) are our CPU choice: on the
    6k-item benchmark collisions and loss plateau well before 300 epochs. valid_fraction 0.05 of the
    items is held out of the gradient steps to measure reconstruction (they still get IDs).
    max_grad_norm 1.0 (our choice): the contrastive loss acts on normalised deep residuals, which are
    small, so its gradients can be large; without clipping the encoder's scale drifts upwards."""

    epochs: int = _setting(300, "training epochs (MACRec runs 1000)")
    batch_size: int = _setting(1024, "items per step")
    learning_rate: float = _setting(1e-3, "AdamW learning rate")
    weight_decay: float = _setting(1e-4, "AdamW weight decay")
    max_grad_norm: float = _setting(1.0, "gradient-norm clipping")
    valid_fraction: float = _setting(0.05, "share of the items held out of training for validation")
    eval_every: int = _setting(10, "epochs between catalogue evaluations")
    save_every: int = _setting(50, "epochs between checkpoints")
    seed: int = _setting(42, "seed of initialisation, k-means and batch order")
    checkpoint_dir: str | None = _setting(None, "training checkpoints (default: OUT.checkpoints)")
    resume: bool = _setting(False, "continue from the checkpoint in checkpoint_dir")
    progress: bool = _setting(True, "show progress bars")
    device: str | None = _setting(None, "torch device (default: cuda where there is one, else cpu)")
