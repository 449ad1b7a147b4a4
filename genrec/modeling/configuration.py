"""``GenRecT5Config``: a T5 config plus MACRec's implicit-alignment settings."""

from transformers import T5Config


class GenRecT5Config(T5Config):
    """Defaults are MACRec's generator: 4+4 layers, d_model 128, 6 heads, d_kv 64, d_ff 1024, dropout 0.1.

    ``implicit_weight`` / ``implicit_tau``: InfoNCE between pooled encoder states of the text-ID
    and image-ID views of one sample (MACRec: lambda 0.01, tau 0.07); weight 0 switches it off.
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
        **kwargs,
    ):
        self.implicit_weight = implicit_weight
        self.implicit_tau = implicit_tau
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
