"""MACRec's cross-modal quantizer losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MASKED = -1e4  # stands in for -inf on the diagonal (cosine / tau <= 1/tau, so exp(-1e4) is 0)


def pseudo_label_contrastive(residuals: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over one modality's residuals where the positives of an anchor are the other batch
    items with the same pseudo-label (K-means cluster of the *other* modality); label -1 = none.

    MACRec samples one random positive per anchor; we average the log-probability over all positives
    (supervised-contrastive form): deterministic and lower variance. Anchors without a positive in
    the batch are skipped; the result is 0 when no anchor has one.
    """
    feats = F.normalize(residuals, dim=-1)
    n = feats.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=feats.device)
    sim = (feats @ feats.T / tau).masked_fill(eye, _MASKED)
    pos = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0) & ~eye
    n_pos = pos.sum(dim=1)
    anchors = n_pos > 0
    if not anchors.any():
        return residuals.sum() * 0.0
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    per_anchor = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1) / n_pos.clamp(min=1)
    return -per_anchor[anchors].mean()


def alignment_infonce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE between two modalities' quantized vectors; row i of ``a`` and ``b`` is one item
    (MACRec's reconstruction-alignment loss)."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
    target = torch.arange(a.shape[0], device=a.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
