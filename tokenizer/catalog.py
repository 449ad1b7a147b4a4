"""The item catalogue: item id <-> semantic ID per modality, and the prefix tries for decoding."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..errors import DataError, UnknownItemError


@dataclass
class PrefixTrie:
    """All semantic IDs of one modality as a dense prefix tree, built once, as tensors.

    Node 0 is the root; nodes are the distinct prefixes of length 0..levels-1 and ``depth[n]`` is
    the prefix length. ``children[n, c]`` is the node reached by code ``c`` (-1: no item has that
    prefix); from a node of depth ``levels - 1`` it is a *leaf* index instead, and
    ``leaf_rows[leaf_offsets[j]:leaf_offsets[j + 1]]`` are the item rows carrying ID ``j``
    (several only when collisions were left unresolved).
    """

    children: torch.Tensor  # int64 [n_nodes, codebook_size]
    depth: torch.Tensor  # int64 [n_nodes]
    leaf_offsets: torch.Tensor  # int64 [n_leaves + 1]
    leaf_rows: torch.Tensor  # int64 [n_items with this modality]
    leaf_codes: torch.Tensor  # int64 [n_leaves, levels]
    levels: int

    @classmethod
    def build(cls, codes: np.ndarray, codebook_size: int) -> "PrefixTrie":
        rows = np.flatnonzero((codes >= 0).all(axis=1))
        levels = codes.shape[1]
        node_of: dict[tuple, int] = {(): 0}
        children = [[-1] * codebook_size]
        depth = [0]
        leaf_of: dict[tuple, int] = {}
        leaf_items: list[list[int]] = []
        for row in rows:  # row order keeps node numbering deterministic
            code = tuple(int(c) for c in codes[row])
            for d in range(levels):
                parent = node_of[code[:d]]
                if d == levels - 1:
                    leaf = leaf_of.setdefault(code, len(leaf_items))
                    if leaf == len(leaf_items):
                        leaf_items.append([])
                    leaf_items[leaf].append(int(row))
                    children[parent][code[d]] = leaf
                elif code[: d + 1] not in node_of:
                    node_of[code[: d + 1]] = len(children)
                    children[parent][code[d]] = len(children)
                    children.append([-1] * codebook_size)
                    depth.append(d + 1)
        offsets = np.cumsum([0] + [len(x) for x in leaf_items])
        leaf_codes = sorted(leaf_of, key=leaf_of.get)
        return cls(
            children=torch.tensor(children, dtype=torch.long),
            depth=torch.tensor(depth, dtype=torch.long),
            leaf_offsets=torch.tensor(offsets, dtype=torch.long),
            leaf_rows=torch.tensor([r for x in leaf_items for r in x], dtype=torch.long),
            leaf_codes=torch.tensor(leaf_codes, dtype=torch.long).reshape(-1, levels),
            levels=levels,
        )

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_offsets) - 1

    def rows_of_leaf(self, leaf: int) -> list[int]:
        return self.leaf_rows[self.leaf_offsets[leaf] : self.leaf_offsets[leaf + 1]].tolist()

    def lookup(self, code: Sequence[int]) -> int:
        """Leaf index of a full ID, or -1 when no item carries it."""
        node = 0
        for d, c in enumerate(code):
            if not 0 <= c < self.children.shape[1]:
                return -1
            node = int(self.children[node, c])
            if node < 0 or d == len(code) - 1:
                return node
        return -1


class ItemCatalog:
    """Item ids (user-facing, int or str) and their semantic ID per modality.

    ``codes[m]`` is int64 [n_items, levels]; a row of -1 means the item lacks modality ``m`` (for
    example its image embedding was missing), so it is never generated in that modality.
    """

    def __init__(self, item_ids: Sequence[Any], codes: dict[str, np.ndarray], codebook_sizes: dict[str, int]):
        if not codes:
            raise DataError("a catalogue needs at least one modality of semantic IDs")
        self.item_ids = list(item_ids)
        self.codes = {m: np.asarray(c, dtype=np.int64) for m, c in codes.items()}
        self.codebook_sizes = {m: int(codebook_sizes[m]) for m in self.codes}
        self._index: dict[str, int] = {}
        for row, item in enumerate(self.item_ids):
            key = str(item)
            if key in self._index:
                raise DataError(f"duplicate item id {item!r} at catalogue rows {self._index[key]} and {row}")
            self._index[key] = row
        for m, c in self.codes.items():
            self._validate(m, c, 0)
        self._tries: dict[str, PrefixTrie] = {}

    def _validate(self, modality: str, codes: np.ndarray, first_row: int) -> None:
        if codes.ndim != 2 or codes.shape[0] != len(self.item_ids) - first_row:
            raise DataError(
                f"{modality} codes: expected shape [{len(self.item_ids) - first_row}, levels], got {codes.shape}"
            )
        bad = (codes >= self.codebook_sizes[modality]) | ((codes < 0) & ~(codes < 0).all(axis=1, keepdims=True))
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise DataError(
                f"{modality} codes: row {first_row + row} ({self.item_ids[first_row + row]!r}) has code(s) "
                f"{codes[row].tolist()} outside 0..{self.codebook_sizes[modality] - 1} (a missing modality is a "
                "whole row of -1)"
            )

    @property
    def modalities(self) -> list[str]:
        return list(self.codes)

    def fingerprint(self) -> str:
        """Short hash of the item ids, their codes and the codebook sizes: two catalogues with the same
        fingerprint give a generator the same vocabulary and the same items behind every ID."""
        h = hashlib.sha256(json.dumps([str(i) for i in self.item_ids]).encode())
        for m in sorted(self.codes):
            h.update(f"{m}:{self.codebook_sizes[m]}:{self.codes[m].shape}".encode())
            h.update(np.ascontiguousarray(self.codes[m], dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.item_ids)

    def levels(self, modality: str) -> int:
        return self.codes[modality].shape[1]

    def row(self, item_id: Any) -> int:
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}: not in the catalogue ({len(self)} items)") from None

    def rows(self, item_ids: Iterable[Any]) -> list[int]:
        return [self.row(i) for i in item_ids]

    def trie(self, modality: str) -> PrefixTrie:
        if modality not in self._tries:
            self._tries[modality] = PrefixTrie.build(self.codes[modality], self.codebook_sizes[modality])
        return self._tries[modality]

    def shared_ids(self, modality: str) -> tuple[int, int]:
        """(items that share their ID with another item, distinct IDs shared)."""
        c = self.codes[modality]
        c = c[(c >= 0).all(axis=1)]
        _, counts = np.unique(c, axis=0, return_counts=True)
        return int(counts[counts > 1].sum()), int((counts > 1).sum())

    def add_items(self, item_ids: Sequence[Any], codes: dict[str, np.ndarray]) -> None:
        """Append items (cold start); codes must fit the existing codebooks, so no token id changes."""
        missing = set(self.codes) - set(codes)
        if missing:
            raise DataError(f"add_items: codes missing for modality {sorted(missing)} (use rows of -1 for none)")
        start = len(self.item_ids)
        for item in item_ids:
            if str(item) in self._index:
                raise DataError(f"add_items: item id {item!r} is already in the catalogue")
        new_ids = list(item_ids)
        if len({str(i) for i in new_ids}) != len(new_ids):
            raise DataError("add_items: the new item ids contain duplicates")
        self.item_ids.extend(new_ids)
        try:
            arrays = {}
            for m in self.codes:
                arr = np.asarray(codes[m], dtype=np.int64).reshape(len(new_ids), -1)
                if arr.shape[1] != self.levels(m):
                    raise DataError(f"add_items: {m} codes have {arr.shape[1]} levels, the catalogue {self.levels(m)}")
                self._validate(m, arr, start)
                arrays[m] = arr
        except DataError:
            del self.item_ids[start:]
            raise
        for m, arr in arrays.items():
            self.codes[m] = np.concatenate([self.codes[m], arr])
        for n, item in enumerate(new_ids):
            self._index[str(item)] = start + n
        self._tries.clear()

    def to_dict(self) -> dict:
        return {
            "item_ids": self.item_ids,
            "modalities": {
                m: {"codebook_size": self.codebook_sizes[m], "codes": self.codes[m].tolist()} for m in self.codes
            },
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "catalogue") -> "ItemCatalog":
        try:
            mods = d["modalities"]
            return cls(
                d["item_ids"],
                {m: np.asarray(v["codes"], dtype=np.int64).reshape(len(d["item_ids"]), -1) for m, v in mods.items()},
                {m: int(v["codebook_size"]) for m, v in mods.items()},
            )
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(
                f"{where}: not a genrec item catalogue ({type(e).__name__}: {e}); expected "
                '{"item_ids": [...], "modalities": {name: {"codes": [[...]], "codebook_size": int}}}'
            ) from None
