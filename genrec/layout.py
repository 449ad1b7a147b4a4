"""The one owner of a saved pipeline folder's file names (written by training, evaluation and the
demo; read by the pipeline, the Hub publisher and the model card).

    config.json, model.safetensors, generation_config.json   the generator (transformers)
    adapter_config.json, adapter_model.safetensors           instead, for a LoRA adapter (PEFT)
    tokenizer_config.json, catalog.json, catalog_codes.safetensors[, spiece.model]
                               the tokenizer: item ids and codebook sizes (JSON), semantic IDs (binary;
                               folders written before it hold the codes inline in catalog.json)
    genrec_train_config.json   what training ran: data, tasks, arguments, tokenizer fingerprint, log
    item_prior.json            {"counts": training interactions per catalogue row, "popularity_correction":
                               the default ranking correction a (training argument; absent = 0)}
    ranking_config.json        how the pipeline ranks (genrec.ranking.RankingConfig): beams, fusion, rescoring,
                               popularity correction, cold-start share...; absent: the defaults
    metrics.json               the last `genrec evaluate` (or demo) figures, for the model card
    quantizer/                 the quantizer that made the semantic IDs, when it was ours
"""

MODEL_CONFIG_FILE = "config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
CATALOG_FILE = "catalog.json"
CATALOG_CODES_FILE = "catalog_codes.safetensors"
TRAIN_CONFIG_FILE = "genrec_train_config.json"
ITEM_PRIOR_FILE = "item_prior.json"
METRICS_FILE = "metrics.json"
RANKING_CONFIG_FILE = "ranking_config.json"
QUANTIZER_DIR = "quantizer"
