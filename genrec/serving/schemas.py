"""Request bodies of the service, with their bounds (a request outside them is a 422 naming the field)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

ItemId = Union[StrictInt, StrictStr]  # what items.jsonl allows; 1.0 or true is not an item id

MAX_HISTORY_ITEMS = 1000  # ranking reads the latest max_history of them; more is a client bug
MAX_K = 1000  # the model's num_beams bounds k further (RankingConfig says so by name)
MAX_BATCH_REQUESTS = 256
MAX_QUERY_RESULTS = 100
MAX_NEW_ITEMS = 1000
MAX_BODY_BYTES = 1 << 20  # 1 MiB: 256 requests of 1,000 ids each fit; a runaway client does not


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[ItemId] = Field(max_length=MAX_HISTORY_ITEMS, description="item ids, oldest first")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="items to return (at most the model's num_beams)")
    modality: Literal["fused", "text", "image"] | None = Field(None, description="default: the model's")
    exclude_history: bool = Field(True, description="leave the history's items out of the list")
    strict: bool = Field(False, description="an unknown item id is an error (default: dropped and reported)")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[RecommendRequest] = Field(min_length=1, max_length=MAX_BATCH_REQUESTS)


class NewItem(BaseModel):
    """One item for ``POST /items``: its display fields and either embeddings or semantic IDs per modality
    (as ``genrec add-items`` takes them; a missing modality is ``null``)."""

    model_config = ConfigDict(extra="forbid")

    item_id: ItemId
    title: StrictStr | None = None
    brand: StrictStr | None = None
    categories: list[StrictStr] | None = None
    text_emb: list[Union[StrictFloat, StrictInt]] | None = None
    image_emb: list[Union[StrictFloat, StrictInt]] | None = None
    sid_text: list[StrictInt] | None = None
    sid_image: list[StrictInt] | None = None


class NewItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[NewItem] = Field(min_length=1, max_length=MAX_NEW_ITEMS)
