"""The semantic-ID tokenizer (installed as ``genrec.tokenizer``)."""

from .catalog import ItemCatalog, PrefixTrie
from .semantic_id import SemanticIDTokenizer

# AutoTokenizer finds SemanticIDTokenizer through genrec.auto_registration.

__all__ = ["ItemCatalog", "PrefixTrie", "SemanticIDTokenizer"]
