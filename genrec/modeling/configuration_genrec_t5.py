"""``GenRecT5Config``: a T5 config plus MACRec's implicit-alignment settings."""

from transformers import T5Config


ID_SOFTMAX = ("full", "prefix")
HISTORY_ATTENTION = ("full", "causal")


class GenRecT5Config(T5Config):
    """Defaults are MACRec's generator: 4+4 layers, d_model 128, 6 heads, d_kv 64, d_ff 1024, dropout 0.1.

    ``implicit_weight`` / ``implicit_tau``: InfoNCE between pooled encoder states of the text-ID
    and image-ID views of one sample (MACRec: lambda 0.01, tau 0.07); weight 0 switches it off.

    ``id_softmax``: "full" (T5: the loss normalises over the whole vocabulary) or "prefix" (over the
    codes that may legally follow the target's prefix; the forced EOS is not scored). Decoding follows
    the same normalisation (``genrec.generation``), so the setting travels with the model.

    ``embedding_init_std`` / ``embedding_init_rows``: std of the token-embedding init (None: T5's 1.0)
    for rows [start, end) (None: every row). The reference MACRec code appends its ID tokens with
    ``resize_token_embeddings``, which starts them near zero while T5's own rows stay N(0, 1); both
    forms are measured in benchmarks/results/parity-macrec.md.

    ``item_pooled_encoder``: the encoder sees one position per history item, the mean of its code-token
    embeddings, instead of one per code (4x shorter inputs); its outputs are repeated back onto the
    item's tokens, so masks, decoding and the implicit loss see T5's usual shapes. Which tokens continue
    an item (codes of levels >= 2) is ``item_continuation_ranges``, [start, end) token-id ranges that
    ``build_generator`` fills from the tokenizer. Our lever (issue 14), not MACRec's.

    ``history_attention``: "full" (T5: every encoder token sees the whole input) or "causal" (a history
    item's tokens see the task token, the items before it and their own item; the EOS sees itself only).
    Under "causal" the state of item t is the same whether the input ends at t or goes on, so one encoder
    pass over a whole sequence serves every next-item target in it (``training_mode="sequences"``); ranking
    reads histories through the same rule because it lives in the model (``CausalHistoryT5Stack``). Which
    tokens continue an item is ``item_continuation_ranges``, as for ``item_pooled_encoder``. Each history item's
    encoder state then gets a learned vector by its recency (``recency_buckets``: the latest item, the one
    before, ..., the last bucket for all older ones), since a causal state cannot know how recent it is. Ours
    (issue 32).

    ``num_items`` > 0: the encoder adds a learned vector per catalogue item (``num_items`` rows) to the
    tokens of each history item's ID, found among ``num_item_keys`` IDs (``ItemAwareT5Stack``);
    ``build_generator(item_embeddings=True)`` fills both from the tokenizer. Our lever (issue 14).
    """

    model_type = "genrec_t5"

    # transformers >= 5.4 makes every config subclass a dataclass: these fields override T5's defaults.
    d_model: int = 128
    d_kv: int = 64
    d_ff: int = 1024
    num_layers: int = 4
    num_decoder_layers: int | None = 4
    num_heads: int = 6
    dropout_rate: float | int = 0.1
    implicit_weight: float | int = 0.01
    implicit_tau: float | int = 0.07
    embedding_init_std: float | int | None = None
    embedding_init_rows: list[int] | None = None
    id_softmax: str = "full"
    item_pooled_encoder: bool = False
    item_continuation_ranges: list[list[int]] | None = None
    num_items: int = 0
    num_item_keys: int = 0
    history_attention: str = "full"
    recency_buckets: int = 32

    def __post_init__(self, **kwargs):
        if self.id_softmax not in ID_SOFTMAX:
            raise ValueError(f"id_softmax must be one of {ID_SOFTMAX}, got {self.id_softmax!r}")
        if self.item_pooled_encoder and not self.item_continuation_ranges:
            raise ValueError("item_pooled_encoder needs item_continuation_ranges (build_generator sets them)")
        if self.history_attention not in HISTORY_ATTENTION:
            raise ValueError(f"history_attention must be one of {HISTORY_ATTENTION}, got {self.history_attention!r}")
        if self.history_attention == "causal" and (self.item_pooled_encoder or self.num_items):
            raise ValueError("history_attention='causal' is a plain T5 encoder with another mask; it does not combine "
                             "with item_pooled_encoder or num_items")
        if self.history_attention == "causal" and not self.item_continuation_ranges:
            raise ValueError("history_attention='causal' needs item_continuation_ranges (build_generator sets them)")
        if self.num_items and self.item_pooled_encoder:
            raise ValueError("num_items (item embeddings) and item_pooled_encoder are two encoders; choose one")
        super().__post_init__(**kwargs)
        self.validate()  # T5's own checks (feed_forward_proj, token ids), as its __init__ ran them
