"""A synthetic multimodal catalogue: the built-in default data, so everything runs offline.

THE DATA IS SYNTHETIC. It imitates the structure that makes cross-modal semantic IDs useful, not
any real catalogue:

* every item has a latent *product type* (grouped into super-types) and a latent *brand*
  (grouped into brand tiers);
* the text embedding resolves brand and super-type but blurs the type inside a super-type (as a
  title names the brand and the broad category); the image embedding resolves the product type but
  blurs the brand inside a tier (a photo shows what the thing is, not who made it);
* optionally (``twin_text_rate``) some items have *twin texts*: generic titles that say no more than
  a sibling's of the same brand and super-type, while their photos still differ; with low noise this
  makes the near-duplicate texts that cause semantic-ID collisions in real catalogues;
* users move between related types (same type, same super-type, occasionally anywhere) and keep a
  brand preference, so the next item is predictable from both views together better than from one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..utils import atomic_output_dir


@dataclass
class SynthConfig:
    n_items: int = 2000
    n_users: int = 3000
    n_types: int = 24
    types_per_supertype: int = 4
    n_brands: int = 12
    brands_per_tier: int = 4
    text_dim: int = 128
    image_dim: int = 96
    latent_dim: int = 16
    noise: float = 0.35  # isotropic noise on each view, relative to unit-scale signal
    min_len: int = 5  # same 5-core floor as the Amazon data
    max_len: int = 30
    mean_extra_len: float = 4.0
    p_same_type: float = 0.45
    p_same_supertype: float = 0.4  # else: jump to a random type
    p_preferred_brand: float = 0.6
    missing_image_rate: float = 0.0  # share of items whose image row is NaN
    twin_text_rate: float = 0.0  # share of items whose text repeats a sibling's (same brand and super-type)
    seed: int = 0

    def __post_init__(self):
        """Refuse sizes the generator cannot meet (a user needs ``max_len`` distinct items, and leave-one-out
        at least 3 interactions), instead of looping forever."""
        problems = [
            f"{name} must be >= {low}, got {getattr(self, name)}"
            for name, low in (
                ("n_items", 1),
                ("n_users", 1),
                ("n_types", 1),
                ("n_brands", 1),
                ("types_per_supertype", 1),
                ("brands_per_tier", 1),
                ("text_dim", 1),
                ("image_dim", 1),
                ("latent_dim", 1),
                ("min_len", 3),
            )
            if getattr(self, name) < low
        ]
        if self.max_len < self.min_len:
            problems.append(f"max_len ({self.max_len}) must be >= min_len ({self.min_len})")
        if self.n_items < self.max_len:
            problems.append(
                f"n_items ({self.n_items}) must be >= max_len ({self.max_len}): histories never repeat an item"
            )
        rates = ("p_same_type", "p_same_supertype", "p_preferred_brand", "missing_image_rate", "twin_text_rate")
        problems += [
            f"{name} must be in [0, 1], got {getattr(self, name)}"
            for name in rates
            if not 0 <= getattr(self, name) <= 1
        ]
        if self.p_same_type + self.p_same_supertype > 1:
            problems.append("p_same_type + p_same_supertype must be <= 1")
        problems += [
            f"{name} must be a finite number >= 0, got {getattr(self, name)}"
            for name in ("noise", "mean_extra_len")
            if not 0 <= getattr(self, name) < float("inf")
        ]
        if problems:
            raise DataError("synthetic dataset: " + "; ".join(problems))


def generate(config: SynthConfig) -> dict:
    """Return the catalogue as arrays and lists (no I/O); deterministic per ``config.seed``."""
    c = config
    if c.n_types % c.types_per_supertype or c.n_brands % c.brands_per_tier:
        raise ValueError("n_types / n_brands must be multiples of types_per_supertype / brands_per_tier")
    rng = np.random.default_rng(c.seed)

    item_type = rng.integers(0, c.n_types, c.n_items)
    item_brand = rng.integers(0, c.n_brands, c.n_items)
    supertype = item_type // c.types_per_supertype
    text_latent, image_latent = _view_latents(c, rng, item_type, item_brand, supertype)
    text_emb, image_emb = _view(rng, text_latent, c.text_dim, c.noise), _view(rng, image_latent, c.image_dim, c.noise)
    if c.missing_image_rate > 0:
        image_emb[rng.random(c.n_items) < c.missing_image_rate] = np.nan
    sequences = _sequences(c, rng, item_type, item_brand)
    items = _item_records(c, item_type, item_brand, supertype)
    return {"items": items, "sequences": sequences, "text_emb": text_emb, "image_emb": image_emb}


def _view_latents(c: SynthConfig, rng, item_type, item_brand, supertype) -> tuple[np.ndarray, np.ndarray]:
    """Each item's latent factors as the text and image views weigh them: what one blurs, the other resolves."""
    n_super, n_tiers = c.n_types // c.types_per_supertype, c.n_brands // c.brands_per_tier
    tier = item_brand // c.brands_per_tier

    def factors(n):
        return rng.normal(size=(n, c.latent_dim)) / np.sqrt(c.latent_dim)

    f_super, f_type, f_tier, f_brand = factors(n_super), factors(c.n_types), factors(n_tiers), factors(c.n_brands)
    f_item = factors(c.n_items)
    text_item = _twin_texts(c, rng, f_item, item_brand, supertype) if c.twin_text_rate > 0 else f_item
    text_latent = np.concatenate(
        [f_brand[item_brand] * 1.0, f_super[supertype] * 1.0, f_type[item_type] * 0.15, text_item * 0.5], axis=1
    )
    image_latent = np.concatenate(
        [f_tier[tier] * 0.8, f_brand[item_brand] * 0.15, f_type[item_type] * 1.0, f_item * 0.5], axis=1
    )
    return text_latent, image_latent


def _twin_texts(c: SynthConfig, rng, f_item, item_brand, supertype) -> np.ndarray:
    """Generic titles: the text says no more than a sibling's, while the photo still shows the type."""
    text_item = f_item.copy()
    for i in np.flatnonzero(rng.random(c.n_items) < c.twin_text_rate):
        siblings = np.flatnonzero((item_brand == item_brand[i]) & (supertype == supertype[i]))
        text_item[i] = text_item[rng.choice(siblings)]
    return text_item


def _view(rng, latent, dim, noise) -> np.ndarray:
    """One modality's embeddings: a random projection of its latent factors plus isotropic noise."""
    proj = rng.normal(size=(latent.shape[1], dim)) / np.sqrt(latent.shape[1])
    x = latent @ proj * np.sqrt(latent.shape[1] / 4)
    x += rng.normal(size=x.shape) * noise / np.sqrt(dim) * np.sqrt(dim / 4)
    return x.astype(np.float32)


def _sequences(c: SynthConfig, rng, item_type, item_brand) -> list[list[int]]:
    """Every user's history, drawn from Zipf-like popularity inside each type."""
    popularity = 1.0 / (1.0 + rng.permutation(c.n_items)) ** 0.6
    by_type = [np.flatnonzero(item_type == t) for t in range(c.n_types)]
    type_weight = np.array([popularity[ix].sum() for ix in by_type])
    return [_user_sequence(c, rng, by_type, type_weight, popularity, item_brand) for _ in range(c.n_users)]


def _user_sequence(c: SynthConfig, rng, by_type, type_weight, popularity, item_brand) -> list[int]:
    """One user's distinct items: each picked in the current type by popularity and brand preference."""
    length = min(c.max_len, c.min_len + int(rng.poisson(c.mean_extra_len)))
    brand_pref = rng.integers(0, c.n_brands)
    t = int(rng.choice(c.n_types, p=type_weight / type_weight.sum()))
    seen, seq = set(), []
    while len(seq) < length:
        cand = [i for i in by_type[t] if i not in seen]
        if cand:
            cand = np.array(cand)
            w = popularity[cand] * np.where(
                item_brand[cand] == brand_pref, c.p_preferred_brand * c.n_brands, 1 - c.p_preferred_brand
            )
            item = int(rng.choice(cand, p=w / w.sum()))
            seen.add(item)
            seq.append(item)
        t = _next_type(c, rng, t)
    return seq


def _next_type(c: SynthConfig, rng, t: int) -> int:
    """Where a user moves after an item: the same type, a type of the same super-type, or anywhere."""
    u = rng.random()
    if u < c.p_same_type:
        return t
    if u < c.p_same_type + c.p_same_supertype:
        s = t // c.types_per_supertype
        return int(s * c.types_per_supertype + rng.integers(0, c.types_per_supertype))
    return int(rng.integers(0, c.n_types))


# Made-up names so the demo and the served catalogue read like products; a latent beyond a list gets a number.
BRAND_NAMES = ("Aldmere", "Brisco", "Corvane", "Dunhill", "Eskar", "Falcrest", "Glenvar", "Harlow", "Ivory Oak",
               "Jorvik", "Kestrel", "Lumen", "Marrow", "Nordvik", "Orwell", "Pellam")  # fmt: skip
SUPERTYPE_NAMES = ("Guitar", "Amplifier", "Microphone", "Keyboard", "Drum", "Cable", "Pedal", "Headphones")
TYPE_NAMES = ("Strings", "Strap", "Case", "Stand", "Tuner", "Capo", "Pick Set", "Cleaner")


def _name(names: tuple[str, ...], n: int) -> str:
    return names[n] if n < len(names) else f"{names[n % len(names)]} {n // len(names) + 1}"


def _item_records(c: SynthConfig, item_type, item_brand, supertype) -> list[dict]:
    """The items.jsonl rows: titles name the brand and super-type only (what the text view resolves); the type
    is a category, the latents are kept for analysis."""
    records = []
    for i in range(c.n_items):
        brand, kind = _name(BRAND_NAMES, int(item_brand[i])), _name(SUPERTYPE_NAMES, int(supertype[i]))
        part = _name(TYPE_NAMES, int(item_type[i]) % c.types_per_supertype)
        records.append(
            {
                "item_id": i,
                "title": f"{brand} {kind} no. {i}",
                "brand": brand,
                "categories": [kind, f"{kind} {part}"],
                "latent_type": int(item_type[i]),
                "latent_brand": int(item_brand[i]),
            }
        )
    return records


README = """# Synthetic genrec dataset (NOT real data)

Written by `genrec synth` with the configuration below. Items have latent product types and brands;
`text_emb.npy` resolves brand and super-type, `image_emb.npy` resolves the product type; users move
between related types with a brand preference. Use it to check that the pipeline runs and learns;
numbers on it say nothing about real catalogues.

```json
{config}
```
"""


def write_synthetic_dataset(out: str | Path, config: SynthConfig | None = None, overwrite: bool = False) -> Path:
    """Generate and write a dataset directory (atomically; see ``check_output_dir``); returns its path."""
    config = config or SynthConfig()
    cat = generate(config)
    out = Path(out)
    with atomic_output_dir(out, "dataset", overwrite=overwrite) as tmp:
        with open(tmp / "items.jsonl", "w", encoding="utf-8") as fh:
            for it in cat["items"]:
                fh.write(json.dumps(it) + "\n")
        with open(tmp / "sequences.jsonl", "w", encoding="utf-8") as fh:
            for u, seq in enumerate(cat["sequences"]):
                fh.write(json.dumps({"user_id": u, "items": seq}) + "\n")
        np.save(tmp / "text_emb.npy", cat["text_emb"])
        np.save(tmp / "image_emb.npy", cat["image_emb"])
        (tmp / "README.md").write_text(README.format(config=json.dumps(asdict(config), indent=2)))
        from .loading import load_dataset_dir

        load_dataset_dir(tmp, quiet=True)  # what fails the loader's checks is not left in place as a dataset
    return out
