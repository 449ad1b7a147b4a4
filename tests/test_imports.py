"""Lazy imports: `import genrec` and `genrec --help` import neither torch nor T5's modeling code, yet every
Auto class transformers offers finds genrec's classes, whichever is imported first."""

from __future__ import annotations

import subprocess
import sys


def imported_modules(code: str, *args: str) -> set[str]:
    """The modules Python imported running ``code`` (or ``-m genrec args``), from ``-X importtime``."""
    argv = [sys.executable, "-X", "importtime", *(["-m", "genrec", *args] if args else ["-c", code])]
    err = subprocess.run(argv, capture_output=True, text=True, check=False).stderr
    return {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}


def test_import_genrec_and_help_stay_light():
    for modules in (imported_modules("import genrec"), imported_modules("", "--help")):
        assert "genrec" in modules
        assert "transformers.models.t5.modeling_t5" not in modules
        assert "torch" not in modules


AUTO_CHECK = """
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.models.auto.tokenization_auto import tokenizer_class_from_name
from genrec.modeling.configuration_genrec_t5 import GenRecT5Config
from genrec.quantizer.config import CrossModalRQVAEConfig
assert AutoConfig.for_model("genrec_t5").__class__ is GenRecT5Config
assert AutoConfig.for_model(CrossModalRQVAEConfig.model_type).__class__ is CrossModalRQVAEConfig
assert AutoModelForSeq2SeqLM._model_mapping[GenRecT5Config].__name__ == "GenRecT5ForConditionalGeneration"
assert AutoModel._model_mapping[CrossModalRQVAEConfig].__name__ == "CrossModalRQVAE"
assert tokenizer_class_from_name("SemanticIDTokenizer").__name__ == "SemanticIDTokenizer"
print("ok")
"""


def test_auto_classes_find_genrec_whichever_is_imported_first():
    for first in ("import genrec", "import transformers.models.auto.modeling_auto"):
        then = "import genrec" if first != "import genrec" else ""
        out = subprocess.run(
            [sys.executable, "-c", f"{first}\n{then}\n{AUTO_CHECK}"], capture_output=True, text=True, check=False
        )
        assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_public_names_load_on_first_use():
    import genrec

    assert genrec.GenRecPipeline.__name__ == "GenRecPipeline"
    assert set(genrec.__all__) <= set(dir(genrec))
    try:
        genrec.NoSuchThing
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")
