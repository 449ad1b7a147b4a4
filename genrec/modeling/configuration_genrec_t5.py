"""``GenRecT5Config``: a T5 config plus MACRec's implicit-alignment settings."""

from transformers import T5Config


ID_SOFTMAX = ("full", "prefix")


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

    ``num_items`` > 0: the encoder adds a learned vector per catalogue item (``num_items`` rows) to the
    tokens of each history item's ID, found among ``num_item_keys`` IDs (``ItemAwareT5Stack``);
    ``build_generator(item_embeddings=True)`` fills both from the tokenizer. Our lever (issue 14).
    """

    model_type = "genrec_t5"

    def __init__(
        self,
        vocab_size: int = 32128,
        d_model: int = 128,
        d_kv: int = 64,
        d_ff: int = 1024,
        num_layers: int = 4,
        num_decoder_layers: int = 4,
        num_heads: int = 6,
        dropout_rate: float = 0.1,
        feed_forward_proj: str = "relu",
        implicit_weight: float = 0.01,
        implicit_tau: float = 0.07,
        embedding_init_std: float | None = None,
        embedding_init_rows: list[int] | None = None,
        id_softmax: str = "full",
        item_pooled_encoder: bool = False,
        item_continuation_ranges: list[list[int]] | None = None,
        num_items: int = 0,
        num_item_keys: int = 0,
        **kwargs,
    ):
        if id_softmax not in ID_SOFTMAX:
            raise ValueError(f"id_softmax must be one of {ID_SOFTMAX}, got {id_softmax!r}")
        if item_pooled_encoder and not item_continuation_ranges:
            raise ValueError("item_pooled_encoder needs item_continuation_ranges (build_generator sets them)")
        if num_items and item_pooled_encoder:
            raise ValueError("num_items (item embeddings) and item_pooled_encoder are two encoders; choose one")
        self.num_items = num_items
        self.num_item_keys = num_item_keys
        self.id_softmax = id_softmax
        self.item_pooled_encoder = item_pooled_encoder
        self.item_continuation_ranges = item_continuation_ranges
        self.implicit_weight = implicit_weight
        self.implicit_tau = implicit_tau
        self.embedding_init_std = embedding_init_std
        self.embedding_init_rows = embedding_init_rows
        super().__init__(
            vocab_size=vocab_size,
            d_model=d_model,
            d_kv=d_kv,
            d_ff=d_ff,
            num_layers=num_layers,
            num_decoder_layers=num_decoder_layers,
            num_heads=num_heads,
            dropout_rate=dropout_rate,
            feed_forward_proj=feed_forward_proj,
            **kwargs,
        )
