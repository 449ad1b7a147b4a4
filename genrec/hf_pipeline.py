"""genrec as a transformers pipeline task: after ``import genrec``,
``transformers.pipeline("next-item-recommendation", model=FOLDER_OR_REPO)`` ranks like ``GenRecPipeline``.

transformers loads the generator (``AutoModelForSeq2SeqLM``) and the tokenizer; the rest of the folder
(ranking settings, item prior, training record) is read from where the model came from. A history is a
list of item ids, so unlike transformers' default a list is one input: ``pipe([3, 7, 9], k=5)`` is one
history, ``pipe([[3, 7], [9]])`` two (ranked in one batch).
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

from .ranking.config import REQUEST_SETTINGS

TASK = "next-item-recommendation"


class NextItemRecommendationPipeline(Pipeline):
    """preprocess (a history of item ids) -> _forward (``GenRecPipeline.recommend``) -> postprocess (one
    record per item: ``item_id``, ``score``, ``sources`` and the catalogue's title, brand, categories)."""

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def __init__(self, model, tokenizer=None, **kwargs):
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)
        from .pipeline import GenRecPipeline
        from .pipeline_io import resolve_folder

        folder = resolve_folder(self.model.name_or_path)
        self.recommender = GenRecPipeline.from_model(self.model, self.tokenizer, folder)
        self.recommender.name_or_path = self.model.name_or_path

    def _sanitize_parameters(self, **kwargs):
        unknown = sorted(set(kwargs) - set(REQUEST_SETTINGS))
        if unknown:
            raise TypeError(f"{TASK}: unknown parameters {unknown}; known: {list(REQUEST_SETTINGS)}")
        return {}, {k: v for k, v in kwargs.items() if v is not None}, {}

    def __call__(self, inputs, **kwargs) -> list[dict] | list[list[dict]]:
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{TASK}: a history is a list of item ids (oldest first), got {type(inputs).__name__}")
        many = len(inputs) > 0 and all(isinstance(h, (list, tuple)) for h in inputs)
        _, forward, _ = self._sanitize_parameters(**kwargs)
        if not many:
            return self.postprocess(self._forward(self.preprocess(inputs), **forward))
        recs = self.recommender.recommend([list(h) for h in inputs], **forward)  # one batched ranking
        return [self.postprocess({"recommendation": rec}) for rec in recs]

    def preprocess(self, history) -> dict[str, Any]:
        return {"history": list(history)}

    def _forward(self, inputs: dict, **params) -> dict:
        return {"recommendation": self.recommender.recommend(inputs["history"], **params)}

    def postprocess(self, outputs: dict) -> list[dict]:
        return outputs["recommendation"].records(self.recommender.tokenizer.catalog)


def register(pipelines_module) -> None:
    """Add the task to transformers' pipeline registry (``genrec.auto_registration`` calls this)."""
    from transformers import AutoModelForSeq2SeqLM

    pipelines_module.PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=NextItemRecommendationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
