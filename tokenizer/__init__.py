"""The semantic-ID tokenizer (installed as ``genrec.tokenizer``)."""

from transformers import AutoTokenizer

from ..modeling.configuration_genrec_t5 import GenRecT5Config
from .catalog import ItemCatalog, PrefixTrie
from .semantic_id import SemanticIDTokenizer

# Registered on import, so AutoTokenizer.from_pretrained finds the class by the name saved in
# tokenizer_config.json without trust_remote_code.
AutoTokenizer.register(GenRecT5Config, tokenizer_class=SemanticIDTokenizer, exist_ok=True)

__all__ = ["ItemCatalog", "PrefixTrie", "SemanticIDTokenizer"]
