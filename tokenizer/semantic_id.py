"""``SemanticIDTokenizer``: semantic IDs as a Hugging Face tokenizer vocabulary, with the catalogue.

Vocabulary, in this order (so ids are stable when items are added later):
special tokens (``<pad>``, ``</s>``, ``<unk>``), one token per task (``<seqrec>``, ...), one token per
(modality, level, code) (``<t1_17>``: text, level 1, code 17; ``<i1_17>`` for image), then, when a
sentencepiece model is attached, its pieces for natural-language text.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Sequence

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizer

from .. import DEFAULT_MAX_HISTORY, SEQUENTIAL_TASK, TASKS
from ..errors import DataError, MalformedIDError
from ..layout import CATALOG_CODES_FILE, CATALOG_FILE
from .catalog import ItemCatalog, PrefixTrie

SP_MODEL_FILE = "spiece.model"
_TOKEN_RE = re.compile(r"<[^<>\s]+>")


def modality_prefix(modality: str) -> str:
    return modality[0]


class SemanticIDTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"catalog_file": CATALOG_FILE, "codes_file": CATALOG_CODES_FILE, "sp_model_file": SP_MODEL_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        catalog_file: str | None = None,
        codes_file: str | None = None,
        sp_model_file: str | None = None,
        tasks: Sequence[str] = TASKS,
        catalog: ItemCatalog | None = None,
        pad_token: str = "<pad>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        **kwargs,
    ):
        if catalog is None:
            if catalog_file is None:
                raise DataError("SemanticIDTokenizer needs a catalogue (catalog= or catalog_file=)")
            catalog = ItemCatalog.load(catalog_file, codes_file)
        self.catalog = catalog
        self.tasks = list(tasks)
        prefixes = [modality_prefix(m) for m in catalog.modalities]
        if len(set(prefixes)) != len(prefixes):
            raise DataError(f"modality names {catalog.modalities} must start with distinct letters")
        self.sp_model_file = sp_model_file
        self._sp = None
        # from_pretrained hands special tokens over as AddedToken objects
        tokens = [str(pad_token), str(eos_token), str(unk_token)] + [f"<{t}>" for t in self.tasks]
        self._level_start: dict[tuple[str, int], int] = {}
        for m in catalog.modalities:
            for level in range(catalog.levels(m)):
                self._level_start[(m, level)] = len(tokens)
                tokens += [f"<{modality_prefix(m)}{level + 1}_{c}>" for c in range(catalog.codebook_sizes[m])]
        self._sp_offset = len(tokens)
        if sp_model_file is not None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=sp_model_file)
            tokens += [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        self._tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            raise DataError("the sentencepiece model has pieces that collide with semantic-ID tokens")
        kwargs.setdefault("padding_side", "right")
        # Long histories keep their most recent items (see truncate_sequences).
        kwargs.setdefault("truncation_side", "left")
        super().__init__(
            pad_token=pad_token,
            eos_token=eos_token,
            unk_token=unk_token,
            tasks=self.tasks,
            special_tokens_pattern="eos",
            **kwargs,
        )

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_codes(
        cls,
        item_ids: Sequence[Any],
        codes: dict[str, np.ndarray],
        codebook_size: int | dict[str, int] | None = None,
        display: Sequence[dict] | None = None,
        **kwargs,
    ) -> "SemanticIDTokenizer":
        """Build from item ids and int codes [n_items, levels] per modality (-1 rows: missing).

        ``codebook_size`` defaults to 256 (MACRec/MQL4GRec), or more if a code needs it; a size given
        explicitly is a bound, and a code beyond it is an error (it would silently grow the vocabulary).
        """
        if codebook_size is None:
            sizes = {m: max(256, int(np.max(c)) + 1) for m, c in codes.items()}
        elif isinstance(codebook_size, int):
            sizes = {m: codebook_size for m in codes}
        else:
            sizes = dict(codebook_size)
        return cls(catalog=ItemCatalog(item_ids, codes, sizes, display=display), **kwargs)

    def fingerprint(self) -> dict:
        """What a generator's weights are tied to: the catalogue behind every ID and the vocabulary size."""
        return {"catalogue": self.catalog.fingerprint(), "vocab_size": len(self)}

    # ---- vocabulary (PreTrainedTokenizer API) --------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._ids)
        vocab.update(getattr(self, "_added_tokens_encoder", {}))
        return vocab

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        out, pos = [], 0
        for match in _TOKEN_RE.finditer(text):
            out += self._text_pieces(text[pos : match.start()])
            out.append(match.group())
            pos = match.end()
        return out + self._text_pieces(text[pos:])

    def _text_pieces(self, text: str) -> list[str]:
        if not text.strip():
            return []
        if self._sp is None:
            return [self.unk_token] * len(text.split())
        return self._sp.encode(text.strip(), out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        return self._ids.get(token, self._ids[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        return self._tokens[index] if 0 <= index < len(self._tokens) else self.unk_token

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("\u2581", " ").strip()

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = os.path.join(save_directory, prefix + CATALOG_FILE)
        codes = os.path.join(save_directory, prefix + CATALOG_CODES_FILE)
        self.catalog.save(path, codes)
        files = [path, codes]
        if self.sp_model_file is not None:
            sp_path = os.path.join(save_directory, prefix + SP_MODEL_FILE)
            if os.path.abspath(sp_path) != os.path.abspath(self.sp_model_file):
                shutil.copyfile(self.sp_model_file, sp_path)
            files.append(sp_path)
        return tuple(files)

    def truncate_sequences(
        self, ids, pair_ids=None, num_tokens_to_remove=0, truncation_strategy="longest_first", stride=0
    ):
        """Left truncation drops whole items after the leading task token, never the task token."""
        if num_tokens_to_remove <= 0 or pair_ids is not None or self.truncation_side != "left":
            return super().truncate_sequences(ids, pair_ids, num_tokens_to_remove, truncation_strategy, stride)
        head = 1 if ids and ids[0] in self.task_token_ids else 0
        body = ids[head:]
        width = self._item_width(body[0]) if body else 1
        cut = min(len(body), -(-num_tokens_to_remove // width) * width)
        return ids[:head] + body[cut:], None, body[:cut]

    # ---- semantic IDs --------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return self.catalog.modalities

    @property
    def item_ids(self) -> list[Any]:
        return self.catalog.item_ids

    def num_levels(self, modality: str) -> int:
        return self.catalog.levels(modality)

    def codebook_size(self, modality: str) -> int:
        return self.catalog.codebook_sizes[modality]

    def level_token_start(self, modality: str, level: int) -> int:
        """Token id of code 0 at ``level`` (0-based); codes of one level are contiguous ids."""
        try:
            return self._level_start[(modality, level)]
        except KeyError:
            raise MalformedIDError(f"no level {level} in modality {modality!r}") from None

    def code_token_id(self, modality: str, level: int, code: int) -> int:
        if not 0 <= code < self.codebook_size(modality):
            raise MalformedIDError(f"code {code} outside 0..{self.codebook_size(modality) - 1} ({modality})")
        return self.level_token_start(modality, level) + code

    def task_token_id(self, task: str) -> int:
        if task not in self.tasks:
            raise DataError(f"unknown task {task!r}; this tokenizer has {self.tasks}")
        return self._ids[f"<{task}>"]

    @property
    def task_token_ids(self) -> set[int]:
        return {self._ids[f"<{t}>"] for t in self.tasks}

    def _item_width(self, token_id: int) -> int:
        for (m, level), start in self._level_start.items():
            if level == 0 and start <= token_id < start + self.codebook_size(m):
                return self.num_levels(m)
        return 1

    def trie(self, modality: str) -> PrefixTrie:
        return self.catalog.trie(modality)

    def item_token_ids(self, modality: str) -> torch.Tensor:
        """Token ids of every item's ID, int64 [n_items, levels] (-1 rows for a missing modality)."""
        codes = torch.as_tensor(self.catalog.codes[modality])
        starts = torch.tensor([self.level_token_start(modality, lv) for lv in range(codes.shape[1])])
        return torch.where(codes >= 0, codes + starts, -1)

    def encode_items(self, item_ids: Sequence[Any], modality: str, skip_missing: bool = False) -> list[int]:
        """Concatenated token ids of the items' IDs in ``modality`` (no special tokens).

        An item lacking the modality raises, or is left out with ``skip_missing``.
        """
        if modality not in self.catalog.codes:
            raise DataError(f"unknown modality {modality!r}; this tokenizer has {self.modalities}")
        return self.encode_rows(self.catalog.rows(item_ids), modality, skip_missing)

    def encode_rows(self, rows: Sequence[int], modality: str, skip_missing: bool = False) -> list[int]:
        """Like ``encode_items`` but for catalogue row indices (what the data splits hold)."""
        table = self._token_table(modality)
        out: list[int] = []
        for r in rows:
            ids = table[r]
            if ids[0] < 0:
                if skip_missing:
                    continue
                raise DataError(f"item {self.item_ids[r]!r} has no {modality} semantic ID")
            out += ids
        return out

    def _token_table(self, modality: str) -> list[list[int]]:
        # The catalogue replaces its code arrays when items are added or their IDs change: a table is valid
        # for the array it was built from.
        cache = self.__dict__.setdefault("_token_tables", {})
        codes = self.catalog.codes[modality]
        if modality not in cache or cache[modality][0] is not codes:
            cache[modality] = (codes, self.item_token_ids(modality).tolist())
        return cache[modality][1]

    def parse_id(self, token_ids: Sequence[int], modality: str) -> tuple[int, ...]:
        """Codes of one full semantic ID; ``MalformedIDError`` names the first bad position."""
        token_ids = [int(t) for t in token_ids if int(t) not in (self.pad_token_id, self.eos_token_id)]
        levels = self.num_levels(modality)
        if len(token_ids) != levels:
            raise MalformedIDError(
                f"a {modality} semantic ID has {levels} tokens, got {len(token_ids)}: "
                f"{self.convert_ids_to_tokens(token_ids)}"
            )
        codes = []
        for level, t in enumerate(token_ids):
            code = t - self.level_token_start(modality, level)
            if not 0 <= code < self.codebook_size(modality):
                raise MalformedIDError(
                    f"position {level + 1} of a {modality} semantic ID must be a level-{level + 1} "
                    f"{modality} code token, got {self._convert_id_to_token(t)!r} (id {t})"
                )
            codes.append(code)
        return tuple(codes)

    def decode_rows(self, token_ids: Sequence[int], modality: str) -> list[int]:
        leaf = self.trie(modality).lookup(self.parse_id(token_ids, modality))
        return [] if leaf < 0 else self.trie(modality).rows_of_leaf(leaf)

    def decode_items(self, token_ids: Sequence[int], modality: str) -> list[Any]:
        """Every item carrying this ID (one after collision resolution; [] if none does)."""
        return [self.item_ids[r] for r in self.decode_rows(token_ids, modality)]

    def encode_task_input(
        self, task: str, rows: Sequence[int], modality: str, max_items: int | None = None
    ) -> list[int]:
        """``<task> ID(item_1) ... ID(item_n) </s>`` for item rows, keeping the last ``max_items``."""
        ids = self.encode_rows(rows, modality, skip_missing=True)
        if max_items is not None:
            ids = ids[-max_items * self.num_levels(modality) :] if max_items > 0 else []
        return [self.task_token_id(task)] + ids + [self.eos_token_id]

    def history_inputs(
        self, history: Sequence[Any], modality: str, max_items: int | None = DEFAULT_MAX_HISTORY
    ) -> BatchEncoding:
        """``model.generate`` inputs (batch of one, tensors) for a history of item ids, oldest first: the
        next-item task of ``modality`` over the last ``max_items`` items (MACRec: 20)."""
        rows = [self.catalog.row(item) for item in history]
        ids = self.encode_task_input(SEQUENTIAL_TASK[modality], rows, modality, max_items=max_items)
        return BatchEncoding(
            {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        )

    def add_items(
        self, item_ids: Sequence[Any], codes: dict[str, np.ndarray], display: Sequence[dict] | None = None
    ) -> None:
        """Cold start: extend the catalogue; existing token ids never change."""
        self.catalog.add_items(item_ids, codes, display)
