"""genrec demo: the whole method end to end on the built-in SYNTHETIC data, sized for a 2-core CPU.

synth -> quantize (cross-modal RQ-VAE) -> tokenizer -> train (cpu profile: next-item tasks + implicit loss) -> evaluate
(test split, 20 beams, fused) next to a popularity baseline -> a few recommendations. Every artifact is
written under --out, so each step can be rerun or inspected with the other subcommands. The last line
is ``demo HR@10=<x> NDCG@10=<y> popularity_HR@10=<z>``.
"""

from __future__ import annotations

import time

from .arguments import positive

# Demo sizes (our choice, to finish in under 2 minutes on 2 cores): 2,000 items and users, the `demo` quantizer
# profile (trainers/profile_files/quantizer/demo.yaml: 3 levels x 64 codes, 80 epochs), and the generator's
# `cpu` profile (2+2 layers, its own tasks) for 3 epochs: 4 epochs gave HR@10 .109 in 2.2 minutes, 3 epochs
# .100 in 1.6 (README, Quick start, states the time and figures of these sizes).
DEMO = dict(n_items=2000, n_users=2000, epochs=3.0)
QUANTIZER_PROFILE = "demo"


def add_arguments(p):
    p.add_argument("--out", default="demo_out", help="folder for the dataset and every artifact (default demo_out)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace folders under --out that genrec did not write (e.g. left by an older version)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the quantizer and the generator")
    p.add_argument(
        "--n-items", type=positive(int), default=DEMO["n_items"], help="synthetic catalogue size (as in `genrec synth`)"
    )
    p.add_argument(
        "--n-users", type=positive(int), default=DEMO["n_users"], help="synthetic users (as in `genrec synth`)"
    )
    p.add_argument("--epochs", type=positive(float), default=DEMO["epochs"], help="generator epochs")
    p.add_argument(
        "--quantizer-epochs",
        type=positive(int),
        help=f"quantizer training epochs (default: the {QUANTIZER_PROFILE!r} quantizer profile's)",
    )


def step(n: int, text: str) -> float:
    print(f"\n[{n}/6] {text}", flush=True)
    return time.perf_counter()


def run(args):
    from pathlib import Path

    out = Path(args.out)
    begin = time.perf_counter()
    data_dir, data = _synthetic_data(args, out)
    _quantize(args, out, data)
    _tokenize(args, out, data)
    model_dir = _train(args, out, data_dir)
    pipe, metrics, popular = _evaluate(model_dir, data)
    history = _recommend(pipe, data)
    print(
        f"\nall artifacts under {out}/ ({(time.perf_counter() - begin) / 60:.1f} min); try "
        f"`genrec recommend --model {model_dir} --history {' '.join(map(str, history[-3:]))}`"
    )
    print(f"demo HR@10={metrics['HR@10']:.4f} NDCG@10={metrics['NDCG@10']:.4f} popularity_HR@10={popular['HR@10']:.4f}")
    return 0


def _synthetic_data(args, out):
    """Step 1: the synthetic catalogue every later step reads; returns its folder and the loaded dataset."""
    from ..data import load_dataset_dir
    from ..data.synth import SynthConfig, write_synthetic_dataset

    step(1, f"synthetic catalogue ({args.n_items} items, {args.n_users} users) -> {out / 'data'}")
    data_dir = write_synthetic_dataset(
        out / "data", SynthConfig(n_items=args.n_items, n_users=args.n_users, seed=args.seed), overwrite=args.overwrite
    )
    data = load_dataset_dir(data_dir)
    print(f"SYNTHETIC data: {data.summary_line()}")
    return data_dir, data


def _quantize(args, out, data) -> None:
    """Step 2: the items' semantic IDs, from the cross-modal quantizer written to <out>/quantizer."""
    from ..quantizer.metrics import format_table
    from ..trainers.profiles import load_profile
    from ..trainers.quantizer_config import QuantizerTrainingArguments
    from ..trainers.quantizer_run import train_quantizer

    t = step(2, "cross-modal RQ-VAE quantizer (MACRec losses) -> semantic IDs")
    profile = load_profile(QUANTIZER_PROFILE, "quantizer")
    epochs = {"epochs": args.quantizer_epochs} if args.quantizer_epochs else {}
    qargs = QuantizerTrainingArguments(**{**profile["args"], **epochs, "seed": args.seed})
    _, qmetrics = train_quantizer(data, out / "quantizer", dict(profile["model"]), qargs, overwrite=args.overwrite)
    print(format_table(qmetrics))
    print(f"quantizer: {time.perf_counter() - t:.0f} s")


def _tokenize(args, out, data) -> None:
    """Step 3: the tokenizer stage's folder, which the generator trains with."""
    from ..tokenizer.build import build_tokenizer
    from ..utils import atomic_output_dir

    step(3, "semantic-ID tokenizer with the item catalogue")
    tok = build_tokenizer(data, out / "quantizer")
    with atomic_output_dir(out / "tokenizer", "tokenizer", overwrite=args.overwrite) as tmp:
        tok.save_pretrained(tmp)
    print(f"vocabulary {len(tok)} tokens, {len(tok.item_ids)} items, tasks {', '.join(tok.tasks)}")


def _train(args, out, data_dir):
    """Step 4: the generator pipeline folder; returns its path."""
    from ..trainers import train_generator

    t = step(4, "T5 generator: next-item tasks per modality + implicit alignment loss (profile cpu)")
    # the cpu profile as it is (its tasks: seqrec + seqimage; the explicit cross-modal tasks cost 3x the
    # rows and scored lower at an equal budget on Instruments: README, Deviations), so a user sees the default
    model_dir = train_generator(
        data_dir,
        out / "model",
        quantizer=out / "quantizer",
        tokenizer=out / "tokenizer",
        profile="cpu",
        seed=args.seed,
        num_train_epochs=args.epochs,
        disable_tqdm=False,
        overwrite=args.overwrite,
    )
    print(f"generator: {time.perf_counter() - t:.0f} s")
    return model_dir


def _evaluate(model_dir, data):
    """Step 5: test metrics, saved beside the model, against popularity's; returns the pipeline and both."""
    from ..baselines import PopularityRecommender
    from ..eval import write_metrics
    from ..eval.evaluation import evaluate_pipeline, evaluate_ranker
    from ..layout import METRICS_FILE
    from ..pipeline import GenRecPipeline

    t = step(5, "evaluation: test split, whole catalogue, 20 beams per modality, rescored and fused")
    pipe = GenRecPipeline.from_pretrained(model_dir)
    metrics, _ = evaluate_pipeline(pipe, data, split="test")
    popular, _ = evaluate_ranker(PopularityRecommender().fit(data), data, split="test")
    write_metrics(metrics, model_dir / METRICS_FILE, echo=False)
    print(f"{'metric':<8} {'genrec':>8} {'popularity':>10}")
    for key in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10"):
        print(f"{key:<8} {metrics[key]:>8.4f} {popular[key]:>10.4f}")
    print(f"evaluation of {metrics['n_users']} users: {time.perf_counter() - t:.0f} s")
    return pipe, metrics, popular


def _recommend(pipe, data) -> list:
    """Step 6: a few test users' recommendations, printed; returns the last user's history (item ids)."""
    step(6, "recommendations for three test users")
    test = data.splits["test"]
    catalog = pipe.tokenizer.catalog
    name = lambda item: f"{catalog.describe(item).get('title', item)}"  # noqa: E731
    for row in range(3):
        history = [data.item_ids[i] for i in test[row]["history"]]
        rec = pipe.recommend(history, k=5)
        print(f"\nuser {test[row]['user_id']}: ... {', '.join(map(name, history[-3:]))}")
        print(f"  next was: {name(data.item_ids[test[row]['target']])}")
        print(f"  genrec:   {', '.join(map(name, rec.item_ids))}")
    return history
