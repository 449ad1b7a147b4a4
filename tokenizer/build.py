"""Build a ``SemanticIDTokenizer`` from a dataset's or a quantizer's ``sid_*.npy`` files."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from ..data.loading import ITEM_CODES_FILE, SID_FILES, GenRecData, read_jsonl, read_semantic_ids
from ..errors import DataError, read_json_file
from .semantic_id import SemanticIDTokenizer

TEXT_FIELDS = ("title", "brand", "description", "categories")


def load_codes(data: GenRecData, quantizer_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Semantic IDs per modality: from a quantizer output folder if given, else the dataset's own."""
    if quantizer_dir is None:
        if not data.semantic_ids:
            raise DataError(f"{data.path}: no sid_text.npy / sid_image.npy; run `genrec quantize` and pass --quantizer")
        return dict(data.semantic_ids)
    qdir = Path(quantizer_dir)
    codes = {}
    for modality, name in SID_FILES.items():
        if (qdir / name).is_file():
            # -1 rows (item lacks the modality) are legal in a quantizer's output
            codes[modality] = read_semantic_ids(qdir / name, data.n_items, allow_missing=True)
    if not codes:
        raise DataError(f"{qdir}: no sid_text.npy / sid_image.npy (is it a `genrec quantize` output folder?)")
    if (qdir / ITEM_CODES_FILE).is_file():  # rows must be the dataset's items, in its order
        quantized = [str(obj.get("item_id")) for _, obj in read_jsonl(qdir / ITEM_CODES_FILE)]
        ours = [str(i) for i in data.item_ids]
        if quantized != ours:
            row = next((r for r, (a, b) in enumerate(zip(quantized, ours)) if a != b), min(len(quantized), len(ours)))
            raise DataError(
                f"{qdir} was quantized from other items than {data.path}: row {row} is "
                f"{quantized[row] if row < len(quantized) else 'missing'!r} there but "
                f"{ours[row] if row < len(ours) else 'missing'!r} in the dataset ({len(quantized)} vs {len(ours)} "
                "items); quantize this dataset, or pass the dataset the quantizer was built from"
            )
    return codes


def quantizer_shape(quantizer_dir: str | Path) -> tuple[int, int] | None:
    """(codebook_size, num_levels) from the quantizer's config.json, so the vocabulary holds no unused
    code tokens and ID files of another shape are refused; None for a folder with only sid_*.npy files."""
    config = Path(quantizer_dir) / "config.json"
    if not config.is_file():
        return None
    cfg = read_json_file(config, "a quantizer config object")
    try:
        return int(cfg["codebook_size"]), int(cfg["num_levels"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{config}: no integer {e} field; is it a `genrec quantize` output?") from None


def item_texts(data: GenRecData) -> list[str]:
    texts = []
    for item in data.items:
        parts = []
        for f in TEXT_FIELDS:
            v = item.get(f)
            if isinstance(v, list):
                v = " ".join(map(str, v))
            if v:
                parts.append(str(v))
        texts.append(" ".join(parts))
    return texts


def train_text_model(texts: list[str], vocab_size: int, out_file: str | Path) -> Path:
    """Train a small unigram sentencepiece model on item text (for prompts and item text)."""
    import sentencepiece as spm

    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError("no item text (title/brand/description/categories) to train a text vocabulary on")
    buf = io.BytesIO()
    spm.set_random_generator_seed(0)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        hard_vocab_limit=False,  # tiny catalogues may not support the asked size
        # our tokenizer owns pad/eos/unk; sentencepiece keeps only its required unknown piece
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_piece="<sp_unk>",
        num_threads=1,  # deterministic
        minloglevel=2,
    )
    out_file = Path(out_file)
    out_file.write_bytes(buf.getvalue())
    return out_file


def build_tokenizer(
    data: GenRecData, quantizer_dir: str | Path | None = None, text_vocab_size: int = 0, **kwargs
) -> SemanticIDTokenizer:
    """The tokenizer for a dataset; ``text_vocab_size > 0`` adds a sentencepiece text vocabulary."""
    codes = load_codes(data, quantizer_dir)
    shape = quantizer_shape(quantizer_dir) if quantizer_dir is not None else None
    if shape is not None:
        size, levels = shape
        for modality, c in codes.items():
            # levels + 1: collision resolution appended a disambiguation level (a prefix had no free code)
            if c.shape[1] not in (levels, levels + 1):
                raise DataError(
                    f"{quantizer_dir}: {SID_FILES[modality]} has {c.shape[1]} levels but the quantizer's "
                    f"config.json says num_levels={levels} (+1 with a disambiguation level); re-run "
                    "`genrec quantize`"
                )
        kwargs.setdefault("codebook_size", size)
    if text_vocab_size <= 0:
        return SemanticIDTokenizer.from_codes(data.item_ids, codes, display=data.items, **kwargs)
    # The model file must outlive this call only until save_pretrained copies it; keep it with the tokenizer.
    tmp = Path(tempfile.mkdtemp(prefix="genrec-sp-"))
    sp_file = train_text_model(item_texts(data), text_vocab_size, tmp / "spiece.model")
    return SemanticIDTokenizer.from_codes(
        data.item_ids, codes, display=data.items, sp_model_file=str(sp_file), **kwargs
    )
