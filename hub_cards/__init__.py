"""Model-card templates (generator, quantizer, adapter) and their renderer.

Cards are rendered only from the run's own files: a metric, statistic or setting appears in a card
only when the caller passes it, so a card never claims a number the run did not measure.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

TEMPLATES_DIR = Path(__file__).resolve().parent
KINDS = ("generator", "quantizer", "adapter")

# Keys of metrics.json that describe the evaluation rather than measure it.
_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z_]*@\d+$")  # HR@10, NDCG@5, Recall@20
# The settings that weigh or shape genrec's losses (by name, not by pattern: neftune_noise_alpha and
# prediction_loss_only are not loss weights)
_LOSS_SETTINGS = {"implicit_weight", "implicit_tau", "task_weights", "label_smoothing_factor"}
# The settings a reader needs to judge or repeat a run (the card's table); the rest stay in the file.
_KEY_SETTINGS = {
    "profile",
    "tasks",
    "implicit",
    "seed",
    "train_minutes",
    "epochs",
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "max_train_minutes",
    "max_history",
    "warmup_steps",
    "weight_decay",
    "lr_scheduler_type",
    "d_model",
    "num_layers",
    "num_decoder_layers",
    "id_softmax",
    "implicit_weight",
}
# Where those settings and the loss weights live in genrec_train_config.json (top level or nested here).
_SETTING_SECTIONS = ("", "training_args.", "model_config.", "implicit.")


def _key_settings(rows: list[tuple[str, str]], keep) -> list[tuple[str, str]]:
    return [
        (k, v) for k, v in rows if k[: len(k) - len(k.split(".")[-1])] in _SETTING_SECTIONS and keep(k.split(".")[-1])
    ]


def _run_settings(train_config: dict) -> list[tuple[str, str]]:
    """The card's hyper-parameter table: the key settings, and the epochs and steps the run actually made (a
    run ended by ``max_steps`` or a time budget did not make the epochs it was configured for)."""
    rows = _key_settings(_flatten(train_config), _KEY_SETTINGS.__contains__)
    args = train_config.get("training_args") or {}
    steps = [e["step"] for e in train_config.get("log_history") or [] if isinstance(e.get("step"), int)]
    epoch = (train_config.get("train_metrics") or {}).get("epoch")
    if (args.get("max_steps") or 0) > 0 or args.get("max_train_minutes") or epoch is not None:
        rows = [(k, v) for k, v in rows if k != "training_args.num_train_epochs"]
    ran = ([("epochs run", f"{epoch:.2f}")] if _is_number(epoch) else []) + (
        [("optimizer steps run", str(max(steps)))] if steps else []
    )
    return ran + rows


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as sorted ("a.b", value) rows, values shown as JSON (compact lists)."""
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows.extend(_flatten(v, f"{key}."))
        else:
            rows.append((key, v if isinstance(v, str) else json.dumps(v)))
    return sorted(rows)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def split_metrics(metrics: dict) -> tuple[dict[str, float], dict[str, Any]]:
    """Split a metrics.json into measured metrics (``HR@10`` ...) and evaluation facts.

    Accepts ``{"metrics": {...}, ...}`` or metrics at the top level. Facts are the scalar remaining
    keys (dataset, split, num_users, ...).
    """
    source = metrics.get("metrics") if isinstance(metrics.get("metrics"), dict) else metrics
    measured = {k: float(v) for k, v in source.items() if _METRIC_NAME.match(k) and _is_number(v)}
    facts = {
        k: v
        for k, v in metrics.items()
        if k not in measured and k != "metrics" and isinstance(v, (str, int, float, bool))
    }
    return measured, facts


def render_card(
    kind: str,
    *,
    repo_id: str,
    metrics: dict | None = None,
    train_config: dict | None = None,
    model_config: dict | None = None,
    quantizer_metrics: dict | None = None,
    adapter_config: dict | None = None,
    rankings_repo_id: str | None = None,
    has_quantizer: bool = False,
    example_items: list | None = None,
    dataset_on_hub: str | None = None,
    license: str = "apache-2.0",
    hub_url: str | None = None,
):
    """Render the ``kind`` card (generator | quantizer | adapter) for ``repo_id`` as a ModelCard.

    ``metrics``: the run's metrics.json (see :func:`split_metrics`); its metrics become a table and
    the card's ``model-index``. Every other argument is the parsed content of the file of the same
    name; sections whose file is absent are left out. ``dataset_on_hub``: the Hub dataset the model was
    trained on (None: a local folder, named by its folder name only).
    """
    import jinja2
    from huggingface_hub import EvalResult, ModelCard, ModelCardData, constants

    from ..hub import path_tail

    if kind not in KINDS:
        raise ValueError(f"unknown card kind {kind!r}; expected one of {KINDS}")
    if kind == "adapter" and not (adapter_config or {}).get("base_model_name_or_path"):
        raise ValueError("an adapter card needs adapter_config with base_model_name_or_path")
    measured, facts = split_metrics(metrics or {})
    dataset, split = facts.pop("dataset", None), facts.pop("split", None)
    train_config = train_config or {}
    dataset = (
        dataset
        or train_config.get("dataset")
        or (path_tail(train_config["data"]) if train_config.get("data") else None)
    )
    tasks = train_config.get("tasks") or []
    base_model = (adapter_config or {}).get("base_model_name_or_path")
    model_name = repo_id.split("/")[-1]

    eval_results = [
        EvalResult(
            task_type="sequential-recommendation",
            task_name="Sequential recommendation",
            dataset_type=str(dataset or "unknown"),
            dataset_name=str(dataset or "unknown"),
            dataset_split=split,
            metric_type=name.lower(),
            metric_name=name,
            metric_value=value,
        )
        for name, value in measured.items()
    ]
    card_data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="peft" if kind == "adapter" else "genrec",
        base_model=base_model,
        tags=["genrec", "recommendation", "generative-recommendation", "semantic-ids", kind],
        pipeline_tag=None,  # transformers 5 has no task for this (text2text-generation is gone)
        datasets=[dataset_on_hub] if dataset_on_hub else None,  # the metadata names Hub datasets only
        metrics=sorted({n.split("@")[0].lower() for n in measured}) or None,
        eval_results=eval_results or None,
    )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["hub_url"] = (hub_url or constants.ENDPOINT).rstrip("/")
    text = env.get_template(f"{kind}.md").render(
        card_data=card_data.to_yaml(),
        model_name=model_name,
        repo_id=repo_id,
        dataset=dataset,
        dataset_on_hub=dataset_on_hub,
        split=split,
        metrics=measured,
        eval_facts=facts,
        tasks=tasks,
        losses=[
            (k, v)
            for k, v in _key_settings(_flatten(train_config), _LOSS_SETTINGS.__contains__)
            if v not in ("0.0", "null")
        ],
        train_config=_run_settings(train_config),
        model_config=_flatten(model_config or {}),
        codebook_stats=_flatten(quantizer_metrics or {}),
        adapter_config=_flatten(adapter_config or {}),
        base_model=base_model,
        rankings_repo_id=rankings_repo_id,
        has_quantizer=has_quantizer,
        # Python literals for the code examples: real ids from the catalogue, else placeholders
        example_history=json.dumps(list(example_items or ["item-id-1", "item-id-2"])),
        example_cli=" ".join(str(i) for i in (example_items or ["item-id-1", "item-id-2"])),
        quantizer_inputs=list(
            zip((model_config or {}).get("modalities") or [], (model_config or {}).get("input_dims") or [])
        ),
    )
    return ModelCard(re.sub(r"\n{3,}", "\n\n", text))
