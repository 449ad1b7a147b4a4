"""SASRec (Kang & McAuley, ICDM 2018), written for genrec as the non-generative reference baseline.

A causal Transformer encoder over item embeddings with learned absolute positions. Training predicts
the next item at every position of each user's training sequence with a full softmax over the
catalogue (cross-entropy; the "CE loss" SASRec variant that TIGER/MQL4GRec/MACRec-era baselines use,
stronger than the paper's sampled binary loss). Output item scores reuse the input item embeddings
(tied, as in the paper). Early stopping keeps the epoch with the best validation NDCG@10, computed by
the same ``genrec.eval.ranking_metrics`` code that scores every model here.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import GenRecError
from ..eval.ranking import ranking_metrics, train_sequences
from ..trainers.sampling import LengthBucketSampler
from .base import Recommender

logger = logging.getLogger(__name__)

PAD = 0  # input ids are row + 1; 0 pads on the right


@dataclass
class SASRecConfig:
    hidden_size: int = 64  # RecBole's SASRec default (paper: 50); small enough for 2 CPU cores
    num_layers: int = 2  # paper and RecBole: 2 self-attention blocks
    num_heads: int = 2  # RecBole default (paper: 1)
    ffn_size: int = 256  # RecBole inner_size for hidden 64
    # Chosen on Instruments validation NDCG@10 (seed 0): 0.1 -> .1077, 0.2 -> .1025, 0.3 -> .0985,
    # 0.5 -> .0929 (benchmarks/results/baselines-*.md). The paper's 0.5 for sparse Amazon data went with its
    # sampled binary loss; with full-softmax CE and early stopping, less dropout did better here.
    dropout: float = 0.1
    max_len: int = 50  # paper (Amazon) and RecBole MAX_ITEM_LIST_LENGTH: last 50 items
    lr: float = 1e-3  # paper: Adam, 1e-3
    weight_decay: float = 0.0  # paper / RecBole: none
    batch_size: int = 128  # paper: 128 sequences
    max_epochs: int = 100  # upper bound; early stopping ends training long before on Instruments
    patience: int = 5  # epochs without a better validation NDCG@10 before stopping (our choice, RecBole: 10)
    eval_batch_size: int = 512
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise GenRecError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        for name in ("hidden_size", "num_layers", "num_heads", "max_len", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise GenRecError(f"SASRecConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise GenRecError(f"SASRecConfig.dropout must be in [0, 1), got {self.dropout}")


class SASRec(nn.Module):
    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        self.n_items, self.config = n_items, config
        d = config.hidden_size
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=PAD)
        self.pos_emb = nn.Embedding(config.max_len, d)
        self.emb_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d, config.num_heads, config.ffn_size, config.dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        for emb in (self.item_emb, self.pos_emb):  # RecBole/BERT init: N(0, 0.02)
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Hidden state per position, (batch, length, d); ``ids`` right-padded, so a causal mask alone
        keeps every real position from seeing padding."""
        t = ids.shape[1]
        x = self.item_emb(ids) + self.pos_emb(torch.arange(t, device=ids.device))
        x = self.dropout(self.emb_norm(x))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        return self.encoder(x, mask=mask, is_causal=True)

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over catalogue rows 0..n_items-1 (tied output embeddings)."""
        return hidden @ self.item_emb.weight[1:].T


def _windows(seqs, max_len: int) -> list[list[int]]:
    """Cut each sequence into windows of <= max_len + 1 items so every item after the first is a
    target exactly once; the last window keeps the most recent context."""
    out = []
    for seq in seqs:
        for end in range(len(seq), 1, -max_len):
            out.append(seq[max(0, end - max_len - 1) : end])
    return out


def _pad(rows: list[list[int]], fill: int, device) -> torch.Tensor:
    t = max(len(r) for r in rows)
    return torch.tensor([r + [fill] * (t - len(r)) for r in rows], dtype=torch.long, device=device)


@torch.no_grad()
def _rank_histories(model: SASRec, histories, k: int, exclude_history: bool, batch_size: int) -> list[list[int]]:
    model.eval()
    device = next(model.parameters()).device
    max_len, ranked = model.config.max_len, []
    for start in range(0, len(histories), batch_size):
        hist = [list(h)[-max_len:] for h in histories[start : start + batch_size]]
        ids = _pad([[i + 1 for i in h] or [PAD] for h in hist], PAD, device)
        last = torch.tensor([max(len(h), 1) - 1 for h in hist], device=device)
        scores = model.item_scores(model(ids)[torch.arange(len(hist), device=device), last])
        if exclude_history:
            for b, h in enumerate(hist):
                scores[b, h] = -math.inf
        ranked += scores.topk(min(k, model.n_items), dim=1).indices.tolist()
    return ranked


class SASRecRecommender(Recommender):
    """SASRec as a ``Recommender``: ``fit`` trains on the train split and keeps the epoch with the best
    validation NDCG@10 (``.model``; ``.log`` holds one record per epoch: ``epoch``, ``loss``,
    ``valid_NDCG@10``, ``train_minutes`` since the start, for learning curves). ``rank`` scores the whole
    catalogue from each history's last ``config.max_len`` items; ``exclude_history`` masks its items."""

    def __init__(self, config: SASRecConfig | None = None, progress: bool = True):
        self.config = config or SASRecConfig()
        self.progress = progress
        self.model: SASRec | None = None
        self.log: list[dict] = []

    def _fit(self, data) -> None:
        self.model, self.log = _train(data, self.config, self.progress)

    def _rank(self, histories: list[list[int]], k: int, exclude_history: bool) -> list[list[int]]:
        return _rank_histories(self.model, histories, k, exclude_history, self.config.eval_batch_size)


def _train(data, config: SASRecConfig, progress: bool) -> tuple[SASRec, list[dict]]:
    """The model at its best validation NDCG@10 and the per-epoch log. Deterministic per ``config.seed``:
    the global torch RNG is forked, seeded and restored."""
    windows = _windows([s for s in train_sequences(data).values() if len(s) >= 2], config.max_len)
    if not windows:
        raise GenRecError(f"{data.path}: the train split has no sequence with two items to learn from")
    lengths = [len(w) for w in windows]
    valid = data.splits["valid"]
    logger.info("SASRec %s on %d windows, %d items", asdict(config), len(windows), data.n_items)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SASRec(data.n_items, config).to(config.device)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        # Shuffled batches of similar-length windows: most sequences are short (mean 8 on Instruments),
        # so this cuts padding, and time, several-fold.
        batcher = LengthBucketSampler(lengths, config.batch_size, generator=torch.Generator().manual_seed(config.seed))
        log, best, best_state, bad = [], -1.0, None, 0
        start = time.monotonic()
        bar = tqdm(range(1, config.max_epochs + 1), desc="SASRec", unit="epoch", disable=not progress)
        for epoch in bar:
            model.train()
            total, n = 0.0, 0
            for idx in batcher.batches():
                batch = [windows[i] for i in idx]
                ids = _pad([[i + 1 for i in w[:-1]] for w in batch], PAD, config.device)
                targets = _pad([w[1:] for w in batch], -100, config.device)
                hidden = model(ids)
                keep = targets != -100
                loss = nn.functional.cross_entropy(model.item_scores(hidden[keep]), targets[keep])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, n = total + loss.item() * int(keep.sum()), n + int(keep.sum())
            ranked = _rank_histories(model, valid["history"], 10, False, config.eval_batch_size)
            ndcg = ranking_metrics(ranked, valid["target"], ks=(10,))["NDCG@10"]
            log.append(
                {
                    "epoch": epoch,
                    "loss": total / n,
                    "valid_NDCG@10": ndcg,
                    "train_minutes": round((time.monotonic() - start) / 60, 3),
                }
            )
            bar.set_postfix(loss=f"{total / n:.3f}", val_ndcg10=f"{ndcg:.4f}")
            if ndcg > best:
                best, best_state, bad = ndcg, copy.deepcopy(model.state_dict()), 0
            else:
                bad += 1
                if bad >= config.patience:
                    break
        model.load_state_dict(best_state)
    logger.info("SASRec: best validation NDCG@10 %.4f after %d epochs", best, len(log))
    return model.eval(), log
