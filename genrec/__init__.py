"""genrec: multimodal generative recommendation with cross-modal semantic IDs."""

__version__ = "0.1.0"

MODALITIES = ("text", "image")

# MACRec's generator tasks: next item in one modality from a history in one modality, and one
# item's ID translated between modalities (explicit cross-modal alignment).
TASKS = ("seqrec", "seqimage", "item2image", "image2item", "seqitem2image", "seqimage2item")
