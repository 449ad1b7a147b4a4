"""genrec: multimodal generative recommendation with cross-modal semantic IDs."""

import os as _os
from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _installed_version

try:  # the one place the version is written is pyproject.toml
    __version__ = _installed_version("genrec")
except _NotInstalled:  # a source checkout that was never installed
    __version__ = "0.0.0+source"

# In a source checkout, tokenizer/, trainers/, eval/ and hub_cards/ sit beside genrec/ (pyproject.toml
# maps them into the package on install). When this folder is imported from the checkout itself (e.g.
# `python -m genrec` from the repository root puts it first on sys.path), find them there.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(__path__[0], "trainers")) and _os.path.isfile(
    _os.path.join(_checkout, "pyproject.toml")
):
    __path__.append(_checkout)

# MACRec's generator tasks: next item in one modality from a history in one modality, and one
# item's ID translated between modalities (explicit cross-modal alignment).
TASKS = ("seqrec", "seqimage", "item2image", "image2item", "seqitem2image", "seqimage2item")
# task -> (modality of the input IDs, modality of the target ID)
TASK_MODALITIES = {
    "seqrec": ("text", "text"),
    "seqimage": ("image", "image"),
    "item2image": ("text", "image"),
    "image2item": ("image", "text"),
    "seqitem2image": ("text", "image"),
    "seqimage2item": ("image", "text"),
}
ITEM_TASKS = ("item2image", "image2item")  # one item's ID translated; the others read a history
# The next-item task of each modality (history in m -> next item's ID in m): what ranking decodes.
SEQUENTIAL_TASK = {"text": "seqrec", "image": "seqimage"}
DEFAULT_MAX_HISTORY = 20  # MACRec / MQL4GRec: the model reads a user's last 20 items
DEFAULT_NUM_BEAMS = 20  # MACRec / MQL4GRec test scripts: beams per modality

# Auto classes: registered when transformers imports its auto modules (genrec.auto_registration), so that
# `import genrec` and `genrec --help` import neither torch nor T5's modeling code. The public classes
# below load on first use (PEP 562).
from . import auto_registration as _auto_registration  # noqa: E402

_auto_registration.install()

_PUBLIC = {
    "CrossModalRQVAE": "quantizer",
    "CrossModalRQVAEConfig": "quantizer",
    "GenRecPipeline": "pipeline",
    "GenRecT5Config": "modeling",
    "GenRecT5ForConditionalGeneration": "modeling",
    "IDConstraint": "generation",
    "ItemCatalog": "tokenizer",
    "RankingConfig": "ranking",
    "RankResult": "ranking",
    "Recommendation": "ranking",
    "SemanticIDTokenizer": "tokenizer",
    "TrieConstrainedLogitsProcessor": "generation",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genrec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = [*sorted(_PUBLIC), "SEQUENTIAL_TASK", "TASKS", "__version__"]
