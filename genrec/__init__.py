"""genrec: multimodal generative recommendation with cross-modal semantic IDs."""

import os as _os

__version__ = "0.1.0"

# In a source checkout, tokenizer/, trainers/, eval/ and hub_cards/ sit beside genrec/ (pyproject.toml
# maps them into the package on install). When this folder is imported from the checkout itself (e.g.
# `python -m genrec` from the repository root puts it first on sys.path), find them there.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(__path__[0], "trainers")) and _os.path.isfile(
    _os.path.join(_checkout, "pyproject.toml")
):
    __path__.append(_checkout)

MODALITIES = ("text", "image")

# MACRec's generator tasks: next item in one modality from a history in one modality, and one
# item's ID translated between modalities (explicit cross-modal alignment).
TASKS = ("seqrec", "seqimage", "item2image", "image2item", "seqitem2image", "seqimage2item")
