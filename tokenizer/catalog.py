"""The item catalogue: item id <-> semantic ID per modality, and the prefix tries for decoding."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..errors import DataError, UnknownItemError, check_item_id, read_json_file

DISPLAY_FIELDS = ("title", "brand", "categories")  # what a served or pushed model shows for an item


def display_fields(item: dict) -> dict:
    """The display fields an ``items.jsonl`` row has (non-empty ones only); categories become a list of strings."""
    out = {}
    for f in DISPLAY_FIELDS:
        v = item.get(f)
        if isinstance(v, (list, tuple)):
            v = [str(x) for x in v if str(x)]
        elif v is not None:
            v = str(v).strip()
        if v:
            out[f] = v
    return out


@dataclass
class PrefixTrie:
    """The semantic IDs of one or more code arrays (modalities) as a sparse prefix tree.

    Built vectorised (one ``np.unique`` per level, no loop over items) and stored as two int64 arrays,
    so a 1M-item catalogue takes tens of MB instead of a dense ``[n_nodes, codebook]`` table.
    Nodes: roots ``0..n_roots-1`` (one per code array), then one node per *edge* ``e`` (node
    ``n_roots + e``). ``edge_keys[e] = parent * width + code``, sorted; since nodes are numbered level
    by level, and by (parent, code) within a level, the children of a node are consecutive and the IDs
    of a level sit in lexicographic order. The nodes of the last level are the *leaves* (full IDs):
    leaf ``j`` is node ``first_leaf + j``; ``leaf_rows[leaf_offsets[j]:leaf_offsets[j + 1]]`` are the
    item rows carrying it, in row order (several only when collisions were left unresolved).
    """

    edge_keys: torch.Tensor  # int64 [n_edges], sorted
    width: int
    levels: int
    n_roots: int
    first_leaf: int
    leaf_offsets: torch.Tensor  # int64 [n_leaves + 1]
    leaf_rows: torch.Tensor  # int64 [rows carrying an ID]
    level_edges: tuple[int, ...]  # edges of level d are edge_keys[level_edges[d]:level_edges[d + 1]]

    @classmethod
    def build(cls, codes: np.ndarray | Sequence[np.ndarray], width: int) -> "PrefixTrie":
        """From ``[n_items, levels]`` code arrays (one per root; rows of -1 are skipped) with codes < ``width``."""
        arrays = [np.asarray(c, dtype=np.int64) for c in ([codes] if isinstance(codes, np.ndarray) else codes)]
        levels = {a.shape[1] for a in arrays}
        if len(levels) != 1:
            raise DataError(f"IDs of different lengths {sorted(levels)} cannot share one trie")
        levels = levels.pop()
        present = [np.flatnonzero((a >= 0).all(axis=1)) for a in arrays]
        node = [np.full(len(rows), r, dtype=np.int64) for r, rows in enumerate(present)]
        sizes = np.cumsum([0] + [len(rows) for rows in present])
        next_node, keys, level_edges = len(arrays), [], [0]
        for d in range(levels):
            level_keys = np.concatenate([n * width + a[rows, d] for n, a, rows in zip(node, arrays, present)])
            uniq, inverse = np.unique(level_keys, return_inverse=True)
            child = next_node + inverse.reshape(-1)
            node = [child[sizes[r] : sizes[r + 1]] for r in range(len(arrays))]
            keys.append(uniq)
            level_edges.append(level_edges[-1] + len(uniq))
            next_node += len(uniq)
        first_leaf = next_node - len(keys[-1])
        leaf = np.concatenate(node) - first_leaf
        rows = np.concatenate(present)
        order = np.argsort(leaf, kind="stable")  # by leaf, then row (rows ascend within each array)
        counts = np.bincount(leaf, minlength=len(keys[-1]))
        return cls(
            edge_keys=torch.from_numpy(np.concatenate(keys)),
            width=int(width),
            levels=levels,
            n_roots=len(arrays),
            first_leaf=int(first_leaf),
            leaf_offsets=torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)),
            leaf_rows=torch.from_numpy(rows[order]),
            level_edges=tuple(level_edges),
        )

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_offsets) - 1

    @property
    def n_nodes(self) -> int:
        return self.n_roots + len(self.edge_keys)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.edge_keys, self.leaf_offsets, self.leaf_rows))

    def edge(self, node: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Edge index of ``code`` below ``node`` (broadcast), -1 where no item has that prefix or ``node`` < 0."""
        key = node * self.width + code
        idx = torch.searchsorted(self.edge_keys, key.contiguous()).clamp(max=max(len(self.edge_keys) - 1, 0))
        ok = (node >= 0) & (code >= 0) & (code < self.width) & (self.edge_keys[idx] == key)
        return torch.where(ok, idx, -1)

    def edges_of(self, node: torch.Tensor) -> torch.Tensor:
        """``[..., width]``: the edge index of every code below each node (-1: not a child)."""
        return self.edge(node[..., None], torch.arange(self.width, device=node.device))

    def child_node(self, edge: torch.Tensor) -> torch.Tensor:
        """Node an edge leads to (-1 for edge -1)."""
        return torch.where(edge >= 0, edge + self.n_roots, -1)

    def leaf_of(self, node: torch.Tensor) -> torch.Tensor:
        """Leaf index of last-level nodes (-1 for anything else)."""
        return torch.where(node >= self.first_leaf, node - self.first_leaf, -1)

    def rows_of_leaf(self, leaf: int) -> list[int]:
        return self.leaf_rows[self.leaf_offsets[leaf] : self.leaf_offsets[leaf + 1]].tolist()

    def lookup(self, code: Sequence[int], root: int = 0) -> int:
        """Leaf index of a full ID below ``root``, or -1 when no item carries it."""
        if len(code) != self.levels:
            return -1
        node = torch.tensor(root)
        for c in code:
            node = self.child_node(self.edge(node, torch.tensor(int(c))))
        return int(self.leaf_of(node))

    def leaf_codes(self) -> torch.Tensor:
        """``[n_leaves, levels]``: the codes of every leaf, in leaf order (decoded from the edge keys)."""
        keys = self.edge_keys
        parent = keys // self.width
        node = torch.arange(self.first_leaf, self.n_nodes)
        out = []
        for _ in range(self.levels):
            edge = node - self.n_roots
            out.append(keys[edge] % self.width)
            node = parent[edge]
        return torch.stack(out[::-1], 1)

    def to(self, device) -> "PrefixTrie":
        for name in ("edge_keys", "leaf_offsets", "leaf_rows"):
            setattr(self, name, getattr(self, name).to(device))
        return self


class ItemCatalog:
    """Item ids (user-facing, int or str) and their semantic ID per modality.

    ``codes[m]`` is int64 [n_items, levels]; a row of -1 means the item lacks modality ``m`` (for
    example its image embedding was missing), so it is never generated in that modality. ``display[row]``:
    the item's ``DISPLAY_FIELDS`` (title, brand, categories) where the dataset had them, for people to read;
    they play no part in ranking or in the fingerprint.
    """

    def __init__(
        self,
        item_ids: Sequence[Any],
        codes: dict[str, np.ndarray],
        codebook_sizes: dict[str, int],
        display: Sequence[dict] | None = None,
    ):
        if not codes:
            raise DataError("a catalogue needs at least one modality of semantic IDs")
        self.item_ids = list(item_ids)
        self.display = self._checked_display(display, len(self.item_ids))
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

    @staticmethod
    def _checked_display(display: Sequence[dict] | None, n: int) -> list[dict]:
        if display is None:
            return [{} for _ in range(n)]
        if len(display) != n:
            raise DataError(f"display fields for {len(display)} items, expected {n}")
        return [display_fields(d) for d in display]

    @property
    def modalities(self) -> list[str]:
        return list(self.codes)

    def has_ids(self, modality: str) -> np.ndarray:
        """Per row: whether the item has ``modality`` IDs (not a row of -1)."""
        return (self.codes[modality] >= 0).all(1)

    def fingerprint(self, n_rows: int | None = None) -> str:
        """Short hash of the item ids, their codes and the codebook sizes: two catalogues with the same
        fingerprint give a generator the same vocabulary and the same items behind every ID. ``n_rows``:
        of the first rows only (a catalogue grown by ``add_items`` keeps its trained part's fingerprint)."""
        n = len(self.item_ids) if n_rows is None else n_rows
        h = hashlib.sha256(json.dumps([str(i) for i in self.item_ids[:n]]).encode())
        for m in sorted(self.codes):
            h.update(f"{m}:{self.codebook_sizes[m]}:{self.codes[m][:n].shape}".encode())
            h.update(np.ascontiguousarray(self.codes[m][:n], dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.item_ids)

    def levels(self, modality: str) -> int:
        return self.codes[modality].shape[1]

    def __contains__(self, item_id: Any) -> bool:
        return str(item_id) in self._index

    def row(self, item_id: Any) -> int:
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise UnknownItemError(f"unknown item id {item_id!r}: not in the catalogue ({len(self)} items)") from None

    def rows(self, item_ids: Iterable[Any]) -> list[int]:
        return [self.row(i) for i in item_ids]

    def describe(self, item_id: Any) -> dict:
        """``{"item_id": ..., "title": ..., "brand": ..., "categories": [...]}`` (the fields it has)."""
        row = self.row(item_id)
        return {"item_id": self.item_ids[row], **self.display[row]}

    def trie(self, modality: str) -> PrefixTrie:
        if modality not in self._tries:
            self._tries[modality] = PrefixTrie.build(self.codes[modality], self.codebook_sizes[modality])
        return self._tries[modality]

    def shared_ids(self, modality: str) -> tuple[int, int]:
        """(items that share their ID with another item, distinct IDs shared)."""
        c = self.codes[modality][self.has_ids(modality)]
        _, counts = np.unique(c, axis=0, return_counts=True)
        return int(counts[counts > 1].sum()), int((counts > 1).sum())

    def add_items(
        self, item_ids: Sequence[Any], codes: dict[str, np.ndarray], display: Sequence[dict] | None = None
    ) -> None:
        """Append items (cold start); codes must fit the existing codebooks, so no token id changes.
        ``display``: their display fields (``display_fields`` of their ``items.jsonl`` rows)."""
        new_display = self._checked_display(display, len(item_ids))
        missing = set(self.codes) - set(codes)
        if missing:
            raise DataError(f"add_items: codes missing for modality {sorted(missing)} (use rows of -1 for none)")
        start = len(self.item_ids)
        for n, item in enumerate(item_ids):
            check_item_id(item, f"add_items: item_ids[{n}]")
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
                self._refuse_taken_ids(m, arr, new_ids)
                arrays[m] = arr
        except DataError:
            del self.item_ids[start:]
            raise
        for m, arr in arrays.items():
            self.codes[m] = np.concatenate([self.codes[m], arr])
        self.display.extend(new_display)
        for n, item in enumerate(new_ids):
            self._index[str(item)] = start + n
        self._tries.clear()

    def drop_ids(self, modality: str, rows: Iterable[int]) -> None:
        """The items at ``rows`` lose their ``modality`` IDs (a row of -1, as for an item added without
        that content): they leave that modality's constraints and stay rankable through the others."""
        self.set_ids(modality, rows, -1)

    def set_ids(self, modality: str, rows: Iterable[int], codes: np.ndarray | int) -> None:
        """The items at ``rows`` get these ``modality`` IDs ([len(rows), levels]; a row of -1, or -1 for
        all, drops the modality). Unlike ``add_items``, an ID may be one another item has: a predicted ID
        names the item the prediction resembles, and the trie serves both."""
        if modality not in self.codes:
            raise DataError(f"unknown modality {modality!r}; the catalogue has {self.modalities}")
        rows = np.asarray(list(rows), dtype=np.int64)
        if rows.size and not ((rows >= 0).all() and (rows < len(self.item_ids)).all()):
            raise DataError(f"rows must be between 0 and {len(self.item_ids) - 1}")
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim and codes.shape != (len(rows), self.levels(modality)):
            raise DataError(
                f"{modality} IDs of shape {codes.shape} for {len(rows)} rows; expected "
                f"[{len(rows)}, {self.levels(modality)}]"
            )
        updated = self.codes[modality].copy()
        updated[rows] = codes
        self._validate(modality, updated, 0)
        self.codes[modality] = updated
        self._tries.pop(modality, None)

    def _refuse_taken_ids(self, modality: str, new: np.ndarray, new_ids: list) -> None:
        """An added item must not take an ID the catalogue (or another added item) already has: the two
        would be indistinguishable to the generator."""
        taken = {tuple(r) for r in self.codes[modality][self.has_ids(modality)].tolist()}
        for n, row in enumerate(new.tolist()):
            if min(row) >= 0 and tuple(row) in taken:
                raise DataError(f"add_items: item {new_ids[n]!r}: {modality} ID {row} is already taken")
            taken.add(tuple(row))

    def save(self, catalog_file: str, codes_file: str) -> None:
        """Item ids and codebook sizes to JSON, the codes to safetensors (smallest int type that holds
        them): a 1M-item catalogue loads in about a second instead of parsing 8M JSON integers."""
        from safetensors.numpy import save_file

        with open(catalog_file, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "item_ids": self.item_ids,
                    "modalities": {
                        m: {"codebook_size": self.codebook_sizes[m], "levels": self.levels(m)} for m in self.codes
                    },
                    **({"display": self.display} if any(self.display) else {}),
                },
                fh,
            )
        save_file(
            {
                m: c.astype(np.int16 if self.codebook_sizes[m] <= np.iinfo(np.int16).max else np.int32)
                for m, c in self.codes.items()
            },
            codes_file,
        )

    @classmethod
    def load(cls, catalog_file: str, codes_file: str | None = None) -> "ItemCatalog":
        """What ``save`` wrote, or a catalogue with inline codes (``catalog.json`` of older folders)."""
        d = read_json_file(catalog_file, "the item catalogue object")
        if codes_file is not None and os.path.isfile(codes_file):
            from safetensors import SafetensorError
            from safetensors.numpy import load_file

            try:
                arrays = load_file(codes_file)
            except (SafetensorError, OSError) as e:
                raise DataError(f"{codes_file}: not a readable safetensors file ({e})") from None
            try:
                d["modalities"] = {m: {**v, "codes": arrays[m]} for m, v in d["modalities"].items()}
            except (KeyError, TypeError, AttributeError) as e:
                raise DataError(f"{codes_file}: no codes for modality {e} of {catalog_file}") from None
        return cls.from_dict(d, catalog_file)

    @classmethod
    def from_dict(cls, d: dict, where: str = "catalogue") -> "ItemCatalog":
        try:
            mods = d["modalities"]
            sizes = {m: int(v["codebook_size"]) for m, v in mods.items()}
            return cls(
                d["item_ids"],
                {m: np.asarray(v["codes"], dtype=np.int64).reshape(len(d["item_ids"]), -1) for m, v in mods.items()},
                sizes,
                display=d.get("display"),
            )
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(
                f"{where}: not a genrec item catalogue ({type(e).__name__}: {e}); expected "
                '{"item_ids": [...], "modalities": {name: {"codes": [[...]], "codebook_size": int}}}'
            ) from None
