"""Trie constraints on decoding: only semantic IDs that some item carries can be generated.

The IDs of every decoded modality live in one sparse prefix trie (``PrefixTrie``, one root per
modality), so rows of different modalities (text-ID and image-ID requests) are constrained in the same
batch, and every operation is a ``searchsorted``/gather over all rows at once (no Python loop over beams,
rows or items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import LogitsProcessor

from ..errors import GenRecError
from ..tokenizer.catalog import PrefixTrie


@dataclass
class IDConstraint:
    """The semantic IDs of ``modalities`` in one sparse trie (``PrefixTrie``, one root per modality,
    global node and leaf numbers), plus the token layout that maps codes to vocabulary ids.

    Codebooks of different sizes share ``width`` (the largest); ``token_start[m, d]`` is the token id of
    code 0 at level ``d`` of modality index ``m``; ``roots[m]`` its root node.
    """

    modalities: list[str]
    trie: PrefixTrie
    roots: torch.Tensor  # int64 [n_modalities]
    token_start: torch.Tensor  # int64 [n_modalities, levels]
    eos_token_id: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tokenizer, modalities: str | Sequence[str]) -> "IDConstraint":
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        unknown = [m for m in modalities if m not in tokenizer.modalities]
        if unknown:
            raise GenRecError(f"unknown modality {unknown}; this tokenizer has {tokenizer.modalities}")
        levels = {tokenizer.num_levels(m) for m in modalities}
        if len(levels) != 1:
            raise GenRecError(
                f"modalities {modalities} have IDs of different lengths {sorted(levels)}; decode them apart"
            )
        levels = levels.pop()
        width = max(tokenizer.codebook_size(m) for m in modalities)
        trie = PrefixTrie.build([tokenizer.catalog.codes[m] for m in modalities], width)
        token_start = torch.tensor(
            [[tokenizer.level_token_start(m, d) for d in range(levels)] for m in modalities], dtype=torch.long
        )
        return cls(
            modalities=modalities,
            trie=trie,
            roots=torch.arange(len(modalities)),
            token_start=token_start,
            eos_token_id=tokenizer.eos_token_id,
            vocab_size=len(tokenizer),
        )

    @property
    def levels(self) -> int:
        return self.trie.levels

    @property
    def width(self) -> int:
        return self.trie.width

    @property
    def n_leaves(self) -> int:
        return self.trie.n_leaves

    def modality_index(self, modality: str) -> int:
        try:
            return self.modalities.index(modality)
        except ValueError:
            raise GenRecError(f"modality {modality!r} is not in this constraint ({self.modalities})") from None

    def code_tokens(self, mod: torch.Tensor, depth: int) -> torch.Tensor:
        """Token ids of codes 0..width-1 at ``depth`` for rows of modality index ``mod``: [N, width].

        Codes past a smaller codebook point at a dump column ``vocab_size`` (never a real token).
        """
        ids = self.token_start[mod, depth][:, None] + torch.arange(self.width, device=mod.device)
        return ids.clamp(max=self.vocab_size)

    def walk(self, generated: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        """Node reached by each row's generated code tokens ([N, t], t < levels); -1 if off the trie."""
        node = self.roots[mod]
        for t in range(generated.shape[1]):
            node = self.trie.child_node(self.trie.edge(node, generated[:, t] - self.token_start[mod, t]))
        return node

    def modality_of_ids(self, first_tokens: torch.Tensor) -> torch.Tensor:
        """Modality index of IDs from their first token [N] (-1: not a level-1 code of this constraint)."""
        start = self.token_start[:, 0]
        hit = (first_tokens[:, None] >= start) & (first_tokens[:, None] < start + self.width)
        return torch.where(hit.any(1), hit.float().argmax(1), -1)

    def legal_codes(self, id_tokens: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        """For full IDs [N, levels] (token ids) of modality index ``mod`` [N]: bool [N, levels, width],
        the codes that legally follow each prefix of the ID (what constrained decoding may choose)."""
        node, legal = self.roots[mod], []
        for t in range(self.levels):
            legal.append(self.trie.edges_of(node) >= 0)
            node = self.trie.child_node(self.trie.edge(node, id_tokens[:, t] - self.token_start[mod, t]))
        return torch.stack(legal, 1)

    def log_prior(self, row_weights: torch.Tensor) -> torch.Tensor:
        """``log P(code | node)`` of the item distribution ``row_weights`` (one weight > 0 per catalogue
        row, e.g. training interactions + 1) on each trie, one value per trie *edge*: float [n_edges].

        Summed along an ID it is ``log P(item)`` (the share of its leaf), so subtracting a multiple of it
        per decoding step turns beam scores into PMI-style scores ``log p(item | history) - a log P(item)``.
        """
        trie = self.trie
        weights = torch.as_tensor(row_weights, dtype=torch.float64, device=trie.edge_keys.device)
        if weights.ndim != 1 or weights.numel() <= int(trie.leaf_rows.max()) or bool((weights <= 0).any()):
            raise GenRecError(
                f"row_weights must be one positive weight per catalogue row (> {int(trie.leaf_rows.max())} rows); "
                f"got shape {tuple(weights.shape)}, min {weights.min().item() if weights.numel() else None}"
            )
        leaf_of_row = torch.repeat_interleave(
            torch.arange(trie.n_leaves, device=weights.device), trie.leaf_offsets.diff()
        )
        node_w = torch.zeros(trie.n_nodes, dtype=torch.float64, device=weights.device)
        node_w[trie.first_leaf :].index_add_(0, leaf_of_row, weights[trie.leaf_rows])
        parent = trie.edge_keys // trie.width
        for d in reversed(range(self.levels)):  # bottom-up: a node weighs what its subtree does
            edges = torch.arange(trie.level_edges[d], trie.level_edges[d + 1], device=weights.device)
            node_w.index_add_(0, parent[edges], node_w[edges + trie.n_roots])
        return (node_w[trie.n_roots :].log() - node_w[parent].log()).float()

    def rows_of_leaf(self, leaf: int) -> list[int]:
        """Catalogue rows carrying global leaf ``leaf``, in catalogue row order (ties of collided IDs)."""
        return self.trie.rows_of_leaf(leaf)

    def to(self, device) -> "IDConstraint":
        self.trie.to(device)
        self.roots, self.token_start = self.roots.to(device), self.token_start.to(device)
        return self


def uses_prefix_softmax(config) -> bool:
    """Whether a model was trained with its ID loss normalised over the legal codes of each prefix
    (``config.id_softmax == "prefix"``): its IDs must be scored the same way."""
    return getattr(config, "id_softmax", "full") == "prefix"


def gather_code_logits(logits: torch.Tensor, code_tokens: torch.Tensor) -> torch.Tensor:
    """``logits[..., V]`` at the token ids ``code_tokens[..., W]`` (``IDConstraint.code_tokens``); the dump
    id ``V`` of codes past a smaller codebook reads -inf."""
    dump = logits.new_full((*logits.shape[:-1], 1), float("-inf"))
    return torch.cat([logits, dump], -1).gather(-1, code_tokens)


class TrieConstrainedLogitsProcessor(LogitsProcessor):
    """Masks every token that would not extend the decoded prefix towards an existing semantic ID.

    Works with ``model.generate`` for greedy, sampling and beam search. The decoder input starts with
    ``prefix_length`` tokens (T5: the decoder start token); then a code at each of ``levels`` levels
    whose prefix some item carries; then EOS only. A row off the trie (only reachable through a beam
    whose score is already -inf) or past EOS gets EOS, so the allowed set is never empty.

    ``modality``: one name for every row, or one per example; row ``r`` then belongs to example
    ``r // num_beams`` (generate's layout), which lets text-ID and image-ID requests share a batch.

    ``renormalise``: rescale the allowed tokens' log-probabilities to sum to 1 (a model trained with
    ``id_softmax="prefix"`` must be decoded this way; pass ``model.config.id_softmax == "prefix"``).
    generate() hands processors log-softmaxed scores in beam search, so this gives the same beam
    scores as ``constrained_beam_search``.
    """

    def __init__(
        self,
        tokenizer,
        modality: str | Sequence[str],
        num_beams: int = 1,
        prefix_length: int = 1,
        renormalise: bool = False,
    ):
        per_example = not isinstance(modality, str)
        self.constraint = IDConstraint.from_tokenizer(tokenizer, sorted(set(modality)) if per_example else modality)
        self.example_mod = (
            torch.tensor([self.constraint.modality_index(m) for m in modality], dtype=torch.long)
            if per_example
            else None
        )
        self.num_beams = num_beams
        self.prefix_length = prefix_length
        self.renormalise = renormalise

    @classmethod
    def for_model(cls, model, tokenizer, modality: str | Sequence[str]) -> "TrieConstrainedLogitsProcessor":
        """The processor ``model.generate`` needs to produce only ``modality``'s item IDs, with the model's
        beam count (its generation_config) and score normalisation (``config.id_softmax``)."""
        return cls(
            tokenizer,
            modality,
            num_beams=model.generation_config.num_beams or 1,
            renormalise=uses_prefix_softmax(model.config),
        )

    def _row_modalities(self, n_rows: int, device) -> torch.Tensor:
        if self.example_mod is None:
            return torch.zeros(n_rows, dtype=torch.long, device=device)
        if n_rows != len(self.example_mod) * self.num_beams:
            raise GenRecError(
                f"TrieConstrainedLogitsProcessor: {n_rows} rows, expected {len(self.example_mod)} examples x "
                f"{self.num_beams} beams"
            )
        return self.example_mod.to(device).repeat_interleave(self.num_beams)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        c = self.constraint
        if c.roots.device != scores.device:
            c.to(scores.device)
        generated = input_ids[:, self.prefix_length :]
        depth = generated.shape[1]
        n = scores.shape[0]
        allowed = torch.zeros(n, scores.shape[1] + 1, dtype=torch.bool, device=scores.device)
        if depth < c.levels:
            mod = self._row_modalities(n, scores.device)
            node = c.walk(generated, mod)
            codes_ok = c.trie.edges_of(node) >= 0
            allowed.scatter_(1, c.code_tokens(mod, depth), codes_ok)
            stuck = node < 0
        else:
            stuck = torch.ones(n, dtype=torch.bool, device=scores.device)
        allowed[:, c.eos_token_id] |= stuck
        scores = scores.masked_fill(~allowed[:, :-1], float("-inf"))
        if self.renormalise:
            scores = scores.log_softmax(dim=-1)
        return scores
