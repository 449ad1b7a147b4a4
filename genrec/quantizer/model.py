"""``CrossModalRQVAE``: one residual-quantized VAE per modality in one Hugging Face model."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .collisions import resolve_collisions
from .config import CrossModalRQVAEConfig
from .kmeans import kmeans
from .losses import alignment_infonce, pseudo_label_contrastive


def _mlp(dims: list[int], dropout: float) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


@dataclass
class Quantized:
    """One modality's pass through the residual quantizer."""

    z_q: torch.Tensor  # straight-through quantized latent (gradient flows to the encoder)
    codes: torch.Tensor  # [n, L]
    residuals: list[torch.Tensor]  # residual entering each level; gradient flows to the encoder only
    vq_loss: torch.Tensor
    last_dists: torch.Tensor  # [n, M] squared distance of the last residual to every last-level code


class ModalityRQVAE(nn.Module):
    """MLP encoder -> L residual codebooks of M codes -> MLP decoder, for one modality."""

    def __init__(self, config: CrossModalRQVAEConfig, input_dim: int):
        super().__init__()
        dims = [input_dim, *config.hidden_dims, config.latent_dim]
        self.encoder = _mlp(dims, config.dropout)
        self.decoder = _mlp(dims[::-1], config.dropout)
        self.codebooks = nn.Parameter(torch.empty(config.num_levels, config.codebook_size, config.latent_dim))
        # 1 once the codebooks hold k-means centres; saved so a loaded model is not re-initialised.
        self.register_buffer("initialized", torch.zeros(()))
        self.beta = config.beta

    def quantize(self, z: torch.Tensor) -> Quantized:
        residual, total = z, torch.zeros_like(z)
        residuals, codes, vq_loss = [], [], z.new_zeros(())
        for cb in self.codebooks:
            residuals.append(residual)
            dists = residual.detach().pow(2).sum(-1, keepdim=True) - 2 * residual.detach() @ cb.T + cb.pow(2).sum(-1)
            idx = dists.argmin(-1)
            e = cb[idx]
            # codebook term moves codes to residuals, commitment term moves the encoder to codes (VQ-VAE)
            vq_loss = vq_loss + F.mse_loss(e, residual.detach()) + self.beta * F.mse_loss(residual, e.detach())
            residual = residual - e.detach()
            total = total + e
            codes.append(idx)
        z_q = z + (total - z).detach()
        return Quantized(z_q, torch.stack(codes, -1), residuals, vq_loss / len(self.codebooks), dists.detach())

    @torch.no_grad()
    def init_codebooks(self, z: torch.Tensor, seed: int, iters: int) -> None:
        """Codebook l = k-means centres of the residuals left by levels < l (MQL4GRec's kmeans_init)."""
        residual = z.detach().cpu().numpy()
        for lv in range(self.codebooks.shape[0]):
            centres, labels = kmeans(residual, self.codebooks.shape[1], seed + lv, iters)
            self.codebooks[lv].copy_(torch.from_numpy(centres))
            residual = residual - centres[labels]
        self.initialized.fill_(1.0)

    @torch.no_grad()
    def restart_dead_codes(self, counts: torch.Tensor, residuals: list[torch.Tensor], generator) -> int:
        """Move codes no item chose (``counts`` [L, M] == 0) onto random residuals of their level."""
        dead = counts == 0
        for lv in range(dead.shape[0]):
            k = int(dead[lv].sum())
            if k:
                pick = torch.randint(0, len(residuals[lv]), (k,), generator=generator)
                self.codebooks[lv, dead[lv]] = residuals[lv][pick].to(self.codebooks.dtype)
        return int(dead.sum())


@dataclass
class CrossModalRQVAEOutput(ModelOutput):
    """Loss terms (summed over modalities) and each modality's codes ([B, L], -1 where missing)."""

    loss: torch.Tensor | None = None
    recon_loss: torch.Tensor | None = None
    vq_loss: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    alignment_loss: torch.Tensor | None = None
    codes: dict | None = None


class CrossModalRQVAE(PreTrainedModel):
    """RQ-VAEs for every modality of ``config.modalities`` plus MACRec's cross-modal losses.

    ``forward(embeddings, pseudo_labels)`` trains; ``encode(embeddings, existing)`` assigns IDs.
    An all-NaN embedding row means the item lacks that modality: it is skipped by that modality's
    RQ-VAE and losses, and gets a row of -1 codes.
    """

    config_class = CrossModalRQVAEConfig
    base_model_prefix = "quantizer"
    main_input_name = "embeddings"
    _no_split_modules = ["ModalityRQVAE"]

    def __init__(self, config: CrossModalRQVAEConfig):
        super().__init__(config)
        self.rqvae = nn.ModuleDict({m: ModalityRQVAE(config, d) for m, d in zip(config.modalities, config.input_dims)})
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, nn.Linear):  # torch's default Linear init (HF's normal(0.02) trains worse here)
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(module.weight.shape[1])
            init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, ModalityRQVAE):
            m = module.codebooks.shape[1]
            init.uniform_(module.codebooks, -1 / m, 1 / m)
            init.zeros_(module.initialized)

    @property
    def modalities(self) -> list[str]:
        return list(self.config.modalities)

    def _check(self, embeddings: dict) -> None:
        unknown = set(embeddings) - set(self.modalities)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; this quantizer has {self.modalities}")
        for m, x in embeddings.items():
            d = self.config.input_dims[self.modalities.index(m)]
            if x.ndim != 2 or x.shape[1] != d:
                raise ValueError(f"{m} embeddings have shape {tuple(x.shape)}; this quantizer expects [n, {d}]")

    def forward(
        self, embeddings: dict[str, torch.Tensor], pseudo_labels: dict[str, torch.Tensor] | None = None
    ) -> CrossModalRQVAEOutput:
        """``embeddings``: modality -> [B, d] (NaN rows = missing); ``pseudo_labels``: modality -> [B]
        clusters (-1 = none) of embedded or IDs-only modalities, needed for the contrastive loss."""
        self._check(embeddings)
        cfg = self.config
        zero = next(self.parameters()).new_zeros(())
        recon, vq, con, align = zero, zero, zero, zero
        present, quantized, codes = {}, {}, {}
        for m, x in embeddings.items():
            present[m] = ~torch.isnan(x).any(-1)
            xm = x[present[m]]
            net = self.rqvae[m]
            q = net.quantize(net.encoder(xm))
            quantized[m] = q
            recon = recon + F.mse_loss(net.decoder(q.z_q), xm)
            vq = vq + q.vq_loss
            full = torch.full((x.shape[0], cfg.num_levels), -1, dtype=torch.long, device=x.device)
            full[present[m]] = q.codes
            codes[m] = full

        pairs = list(itertools.permutations(embeddings, 2))
        if cfg.use_contrastive and pseudo_labels is not None:
            for m in embeddings:  # positives: same pseudo-label in the *other* modality (embedded or IDs-only)
                partners = [o for o in pseudo_labels if o != m]
                for other in partners:
                    labels = pseudo_labels[other][present[m]]
                    # MACRec adds the term to each cross level's quantization loss and averages over all L levels
                    for lv in cfg.contrastive_levels:
                        con = con + pseudo_label_contrastive(quantized[m].residuals[lv], labels, cfg.tau) / (
                            cfg.num_levels * len(partners)
                        )  # one term per modality, averaged over partners
        if cfg.use_alignment and pairs:
            combos = list(itertools.combinations(embeddings, 2))
            for a, b in combos:
                both = present[a] & present[b]
                if int(both.sum()) >= 2:
                    za = _scatter(quantized[a].z_q, present[a])[both]
                    zb = _scatter(quantized[b].z_q, present[b])[both]
                    align = align + alignment_infonce(za, zb, cfg.align_tau) / len(combos)
        loss = recon + cfg.quant_loss_weight * vq + cfg.lambda_con * con + cfg.lambda_align * align
        return CrossModalRQVAEOutput(loss, recon, vq, con, align, codes)

    # ---- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def quantize_catalogue(self, modality: str, x, batch_size: int = 4096) -> dict[str, np.ndarray]:
        """Raw codes [n, L] (-1 rows where missing), last-level distances [n, M] and per-item
        reconstruction MSE [n] (NaN where missing) of one modality's embeddings, in eval mode."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self._check({modality: x})
        was_training = self.training
        self.eval()
        net, cfg = self.rqvae[modality], self.config
        codes = np.full((len(x), cfg.num_levels), -1, dtype=np.int64)
        dists = np.full((len(x), cfg.codebook_size), np.nan, dtype=np.float32)
        mse = np.full(len(x), np.nan, dtype=np.float32)
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(self.device)
            ok = ~torch.isnan(xb).any(-1)
            rows = np.flatnonzero(ok.cpu().numpy()) + start
            if len(rows) == 0:
                continue
            q = net.quantize(net.encoder(xb[ok]))
            codes[rows] = q.codes.cpu().numpy()
            dists[rows] = q.last_dists.cpu().numpy()
            mse[rows] = (net.decoder(q.z_q) - xb[ok]).pow(2).mean(-1).cpu().numpy()
        self.train(was_training)
        return {"codes": codes, "last_dists": dists, "recon_mse": mse}

    def encode(self, embeddings: dict, existing: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Semantic IDs (int64, a row of -1 where the item lacks the modality) for every given modality.

        Without ``existing``: the raw codes [n, L]. With ``existing`` (modality -> the catalogue's IDs,
        e.g. a `genrec quantize` output's sid files): cold start; the new items get IDs unique among
        themselves and against ``existing``, which never change. No retraining.
        """
        out = {}
        for m, x in embeddings.items():
            r = self.quantize_catalogue(m, x)
            if existing is None:
                out[m] = r["codes"]
            else:
                out[m] = resolve_collisions(r["codes"], r["last_dists"], existing=existing[m])[0]
        return out


def _scatter(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put the rows of the present items back at their batch positions (zeros elsewhere)."""
    full = rows.new_zeros((mask.shape[0], rows.shape[1]))
    return full.index_put((mask.nonzero(as_tuple=True)[0],), rows)
