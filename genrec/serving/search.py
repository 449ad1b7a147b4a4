"""Title search over the catalogue's display fields (``GET /items?query=``, the demo's search box)."""

from __future__ import annotations

import numpy as np

from ..tokenizer.catalog import DISPLAY_FIELDS


class ItemSearch:
    """Items whose title, brand or categories hold every word of a query (case-insensitive), the ones with
    the most training interactions first: a person typing "strat pickup" wants the common one."""

    def __init__(self, catalog, counts=None):
        self.catalog = catalog
        self.counts = counts
        self._texts: list[str] = []

    def _text(self, row: int) -> str:
        info = self.catalog.display[row]
        parts = [info[f] if isinstance(info[f], str) else " ".join(info[f]) for f in DISPLAY_FIELDS if f in info]
        return " ".join([str(self.catalog.item_ids[row]), *parts]).lower()

    def search(self, query: str, limit: int = 20) -> list[int]:
        """Catalogue rows matching ``query``, at most ``limit``."""
        n = len(self.catalog)
        if len(self._texts) < n:  # items added since the last search
            self._texts += [self._text(r) for r in range(len(self._texts), n)]
        words = query.lower().split()
        if not words:
            return []
        rows = [r for r, text in enumerate(self._texts) if all(w in text for w in words)]
        counts = np.zeros(n) if self.counts is None else np.asarray(self.counts, dtype=float)
        popularity = [counts[r] if r < len(counts) else 0.0 for r in rows]
        order = np.argsort(-np.asarray(popularity, dtype=float), kind="stable")
        return [rows[i] for i in order[:limit]]
