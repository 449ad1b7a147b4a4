"""Hugging Face Inference Endpoints custom handler for a genrec model repository.

``genrec push`` commits this file as the repository's ``handler.py`` (with a ``requirements.txt`` naming
genrec), so a pushed model deploys as an Inference Endpoint without further code. It is also importable
as ``genrec.serving.handler``.

Request: ``{"inputs": [item ids, oldest first] | [[...], [...]] | {"history": [...]}, "parameters": {"k": 10,
"modality": "fused", "exclude_history": true}}``. Response: per history, a list of ``{"item_id", "score",
"sources", "title", ...}`` best first (one list for one history).
"""

from __future__ import annotations

from typing import Any

from genrec.pipeline import GenRecPipeline
from genrec.ranking.config import REQUEST_SETTINGS


class EndpointHandler:
    def __init__(self, path: str = ""):
        self.pipeline = GenRecPipeline.from_pretrained(path or ".")

    def __call__(self, data: dict[str, Any]) -> list:
        if not isinstance(data, dict):
            raise ValueError(f'the request must be a JSON object {{"inputs": ...}}, got {type(data).__name__}')
        inputs = data.get("inputs")
        if isinstance(inputs, dict):
            inputs = inputs.get("history")
        if not isinstance(inputs, list):
            raise ValueError(
                '"inputs" must be a list of item ids (oldest first), a list of such lists, or {"history": [...]}'
            )
        params = data.get("parameters") or {}
        unknown = sorted(set(params) - set(REQUEST_SETTINGS))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; known: {list(REQUEST_SETTINGS)}")
        recs = self.pipeline.recommend(inputs, **params)  # one history, or a list of them (recommend's rule)
        catalog = self.pipeline.tokenizer.catalog
        return [rec.records(catalog) for rec in recs] if isinstance(recs, list) else recs.records(catalog)
