"""genrec evaluate: rank the whole catalogue for every user of a split; print and save HR/NDCG."""

from __future__ import annotations

from pathlib import Path

from ..layout import METRICS_FILE
from .arguments import add_model_arguments, add_ranking_arguments, model_placement, positive
from .push_rankings import add_push_arguments, check_push_target, push_if_asked


def add_arguments(p):
    add_model_arguments(p)
    p.add_argument("--data", required=True, help="dataset directory the model was trained on")
    p.add_argument("--split", default="test", help="test (default), valid or train")
    add_ranking_arguments(p)
    p.add_argument("--exclude-history", action="store_true", help="drop history items from the rankings")
    p.add_argument(
        "--batch-size",
        type=positive(int),
        help="requests (user x modality) per forward pass (default: the model's ranking_config.json)",
    )
    p.add_argument("--max-users", type=positive(int), default=None, help="only the first N users of the split")
    p.add_argument(
        "--out",
        default=None,
        help=f"JSON file for the metrics (default: MODEL/{METRICS_FILE} for a local model folder, "
        f"else ./{METRICS_FILE})",
    )
    add_push_arguments(p)


def run(args):
    from ..data import load_dataset_dir
    from ..data.hub_dataset import is_hub_dataset_id
    from ..distributed import process_state
    from ..eval import write_metrics
    from ..eval.evaluation import evaluate_pipeline, evaluation_rows
    from ..eval.ranking import is_metrics_file
    from ..pipeline import GenRecPipeline
    from ..utils import check_output_file

    out = check_output_file(
        args.out or (Path(args.model) / METRICS_FILE if Path(args.model).is_dir() else METRICS_FILE),
        "metrics",
        is_metrics_file,
        inputs=[args.data, args.model],
    )
    check_push_target(args)
    state = process_state()  # several processes (accelerate launch / torchrun): users sharded, then gathered
    placement = model_placement(args)
    if state.num_processes > 1 and not args.device:  # each process on its own device
        placement.update(device=str(state.device), device_map=None)
    pipe = GenRecPipeline.from_pretrained(args.model, **placement)
    data = load_dataset_dir(args.data, max_history=pipe.max_history)
    metrics, res = evaluate_pipeline(
        pipe,
        data,
        split=args.split,
        max_users=args.max_users,
        modality=args.modality,
        fusion=args.fusion,
        num_beams=args.num_beams,
        exclude_history=args.exclude_history or None,
        batch_size=args.batch_size,
    )
    if not state.is_main_process:
        return 0
    rows = evaluation_rows(data, args.split, args.max_users)
    # what was measured, for the model card: a validation or a 10-user run must not read as the full test
    dataset = args.data if is_hub_dataset_id(args.data) else Path(args.data).resolve().name
    metrics = {**metrics, "split": args.split, "dataset": dataset}
    print(
        f"{args.split} split, {args.modality}"
        + (f" ({args.fusion})" if args.modality == "fused" else "")
        + f", {args.num_beams} beams"
    )
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        print(f"  {name:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {name:<{width}}  {value}")
    write_metrics(metrics, out, echo=False)
    print(f"wrote {out}")
    push_if_asked(args, lambda: pipe.ranking_records(rows["user_id"], rows["history"], res), args.split)
    return 0
