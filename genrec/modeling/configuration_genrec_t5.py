"""``GenRecT5Config``: a T5 config plus MACRec's implicit-alignment settings."""

from transformers import T5Config

ID_SOFTMAX = ("full", "prefix")
HISTORY_ATTENTION = ("full", "causal")
# Encoder experiments of issue 14 that lost on validation and were removed (README keeps their results).
REJECTED_ENCODERS = ("item_pooled_encoder", "num_items")


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

    ``history_attention``: "full" (T5: every encoder token sees the whole input) or "causal" (a history
    item's tokens see the task token, the items before it and their own item; the EOS sees itself only).
    Under "causal" the state of item t is the same whether the input ends at t or goes on, so one encoder
    pass over a whole sequence serves every next-item target in it (``training_mode="sequences"``); ranking
    reads histories through the same rule because it lives in the model (``CausalHistoryT5Stack``). Which
    tokens continue an item (codes of levels >= 2) is ``item_continuation_ranges``, [start, end) token-id
    ranges that ``build_generator`` fills from the tokenizer. Each history item's encoder state then gets a
    learned vector by its recency (``recency_buckets``: the latest item, the one before, ..., the last bucket
    for all older ones), since a causal state cannot know how recent it is. Ours (issue 32).
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
    item_continuation_ranges: list[list[int]] | None = None
    history_attention: str = "full"
    recency_buckets: int = 32

    def __post_init__(self, **kwargs):
        if self.id_softmax not in ID_SOFTMAX:
            raise ValueError(f"id_softmax must be one of {ID_SOFTMAX}, got {self.id_softmax!r}")
        rejected = [k for k in REJECTED_ENCODERS if kwargs.get(k)]
        if rejected:  # an experiment's folder: loading it as plain T5 would rank silently wrong
            raise ValueError(
                f"{rejected} were rejected encoder experiments (README, training levers) and are no "
                "longer built; this model cannot be loaded by this version"
            )
        if self.history_attention not in HISTORY_ATTENTION:
            raise ValueError(f"history_attention must be one of {HISTORY_ATTENTION}, got {self.history_attention!r}")
        if self.history_attention == "causal" and not self.item_continuation_ranges:
            raise ValueError("history_attention='causal' needs item_continuation_ranges (build_generator sets them)")
        super().__post_init__(**kwargs)
        self.validate()  # T5's own checks (feed_forward_proj, token ids), as its __init__ ran them
