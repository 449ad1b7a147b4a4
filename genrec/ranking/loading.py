"""Loading a pipeline folder's generator and tokenizer, and checking they belong together."""

from __future__ import annotations

from pathlib import Path

from ..errors import GenRecError
from ..layout import ADAPTER_CONFIG_FILE, MODEL_CONFIG_FILE
from ..modeling import embedding_rows
from ..modeling.lora import is_adapter_folder, load_generator
from ..utils import no_hf_progress_bars, nonfinite_parameters


def load_model_and_tokenizer(path: Path):
    """The generator (a LoRA folder: its base with the adapter merged in, as plain weights decode fastest) and
    the tokenizer of folder ``path``. genrec's classes are registered; code shipped inside a folder or repo is
    never run. Damaged files, a foreign tokenizer and NaN weights are one GenRecError each."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    adapter = is_adapter_folder(path)
    if not (adapter or (path / MODEL_CONFIG_FILE).is_file()):
        raise GenRecError(
            f"{path}: no {MODEL_CONFIG_FILE} or {ADAPTER_CONFIG_FILE}; not a pipeline folder (run `genrec train` first)"
        )
    try:
        with no_hf_progress_bars():  # a small model loads in a blink: no "Loading weights" bar
            if adapter:
                model = load_generator(path).merge_and_unload()
            else:
                model = AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=False)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:  # truncated weights, malformed configs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GenRecError(f"{path}: cannot load the generator or its tokenizer ({first})") from e
    if not hasattr(tok, "trie"):
        raise GenRecError(f"{path}: the tokenizer is {type(tok).__name__}, not a genrec SemanticIDTokenizer")
    diverged = nonfinite_parameters(model)
    if diverged:  # every score would be NaN and every list empty
        raise GenRecError(
            f"{path}: {len(diverged)} weight tensors hold NaN or inf (first: {diverged[0]}); "
            "the training diverged: retrain with a lower --lr or with --max-grad-norm"
        )
    return model, tok


def check_tokenizer_fits(path: Path, model, tok, trained_on: dict | None) -> None:
    """Refuse a tokenizer other than the one the generator was trained with: its IDs would decode to
    other items (another catalogue) or index other embedding rows (another vocabulary)."""
    rows = embedding_rows(model)
    if len(tok) > rows:
        raise GenRecError(
            f"{path}: the tokenizer has {len(tok)} tokens but the generator only {rows} embedding rows; "
            "the tokenizer belongs to another model"
        )
    if trained_on is None:  # folders written before the fingerprint was recorded
        return
    found = tok.fingerprint()
    if "trained_rows" in trained_on:  # items added after training (add_items): the trained rows must match
        found = {
            **found,
            "catalogue": tok.catalog.fingerprint(trained_on["trained_rows"]),
            "trained_rows": trained_on["trained_rows"],
        }
    if found != {k: v for k, v in trained_on.items() if k != "ids_edited"}:
        raise GenRecError(
            f"{path}: the generator was trained with tokenizer {trained_on} but the folder holds "
            f"{found} (another quantizer or catalogue); save the tokenizer the model was trained with"
        )
