"""Catalogue scale: decoding constraints, ranking speed, tokenizer storage and quantizer encoding.

    python benchmarks/scale.py --items 6250,100000,1000000,10000000 --json /tmp/scale.json

Per size (each in a fresh process, so peak RSS is that size's own): a synthetic catalogue of random
4 x 256 codes for two modalities; the constraint trie of both (build seconds, MB); fused ranking of a
fixed set of users (random histories of 20 items, 20 beams per modality) with a randomly initialised
``cpu``-profile generator; tokenizer save/load seconds and folder size. For the largest size up to 1M,
the seconds to encode that many new items (384-d embeddings, e.g. MiniLM) with a quantizer of the
default shape (codebooks k-means-initialised on a sample, so codes spread as a trained one's do)
against an existing catalogue, collisions resolved. Writes benchmarks/results/scale.md and, with
--json, a list with one object per size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe, git_commit, results_path, write_atomic

REPO = Path(__file__).resolve().parents[1]
LEVELS, CODEBOOK, MODALITIES = 4, 256, ("text", "image")
EMBED_DIM = 384
MAX_ENCODE_ITEMS = 1_000_000  # quantizer encoding is measured at the largest size up to this


def measure(n_items: int, users: int, encode: bool, seed: int = 0) -> dict:
    from transformers import AutoTokenizer

    import genrec  # noqa: F401  (registers the Auto classes)
    from genrec.generation import IDConstraint
    from genrec.modeling.factory import build_generator
    from genrec.pipeline import GenRecPipeline
    from genrec.tokenizer import SemanticIDTokenizer
    from genrec.trainers import PROFILES

    rng = np.random.default_rng(seed)
    codes = {m: rng.integers(0, CODEBOOK, (n_items, LEVELS)) for m in MODALITIES}
    t0 = time.perf_counter()
    tok = SemanticIDTokenizer.from_codes(list(range(n_items)), codes, CODEBOOK)
    row = {"items": n_items, "tokenizer_build_s": round(time.perf_counter() - t0, 2)}

    t0 = time.perf_counter()
    constraint = IDConstraint.from_tokenizer(tok, list(MODALITIES))
    row["build_s"] = round(time.perf_counter() - t0, 3)
    row["constraint_mb"] = round(constraint.trie.nbytes / 2**20, 1)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tok.save_pretrained(tmp)
        row["tokenizer_save_s"] = round(time.perf_counter() - t0, 2)
        row["tokenizer_mb"] = round(sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20, 1)
        t0 = time.perf_counter()
        loaded = AutoTokenizer.from_pretrained(tmp)
        row["tokenizer_load_s"] = round(time.perf_counter() - t0, 2)
        assert loaded.catalog.fingerprint() == tok.catalog.fingerprint()

    model = build_generator(tok, seed=seed, **PROFILES["cpu"]["model"])
    pipe = GenRecPipeline(model, tok)
    histories = rng.integers(0, n_items, (users, 20)).tolist()
    pipe.rank(histories[:8], modality="fused", k=10, num_beams=20)  # warm-up: builds the pipeline's constraint
    t0 = time.perf_counter()
    pipe.rank(histories, modality="fused", k=10, num_beams=20, batch_size=64)
    row["users_per_s"] = round(users / (time.perf_counter() - t0), 1)
    if encode:
        row.update(encode_new_items(n_items, codes["text"], seed))
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    return row


def encode_new_items(n_items: int, existing: np.ndarray, seed: int) -> dict:
    """Seconds to give ``n_items`` new items collision-free IDs against ``existing`` (cold start)."""
    from genrec.quantizer import CrossModalRQVAE, CrossModalRQVAEConfig

    torch.manual_seed(seed)
    model = CrossModalRQVAE(CrossModalRQVAEConfig(modalities=["text"], input_dims=[EMBED_DIM]))
    rng = np.random.default_rng(seed + 1)
    centres = rng.standard_normal((1000, EMBED_DIM)).astype(np.float32)  # clustered, as real embeddings are
    emb = centres[rng.integers(0, len(centres), n_items)] + 0.5 * rng.standard_normal(
        (n_items, EMBED_DIM), dtype=np.float32
    )
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    net = model.rqvae["text"]
    with torch.no_grad():
        net.init_codebooks(net.encoder(torch.from_numpy(emb[:20000])), seed, 20)
    t0 = time.perf_counter()
    ids = model.encode({"text": emb}, existing={"text": existing})["text"]
    seconds = time.perf_counter() - t0
    both = np.concatenate([existing, ids[:, :LEVELS]]) if ids.shape[1] == LEVELS else None
    unique = both is not None and len(np.unique(both, axis=0)) == len(np.unique(existing, axis=0)) + len(ids)
    return {"encode_items": n_items, "encode_s": round(seconds, 1), "encode_ids_unique": bool(unique)}


def measure_quantize(n_items: int, epochs: int, seed: int = 0) -> dict:
    """`genrec quantize`'s trainer on ``n_items`` items x 2 modalities (384-d each): seconds and peak RSS."""
    from genrec.quantizer import CrossModalRQVAE, CrossModalRQVAEConfig
    from genrec.trainers import QuantizerTrainingArguments
    from genrec.trainers.quantizer_trainer import QuantizerTrainer

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, EMBED_DIM)).astype(np.float32)
    emb = {}
    for m in MODALITIES:
        x = centres[rng.integers(0, len(centres), n_items)]
        x += 0.5 * rng.standard_normal(x.shape, dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        emb[m] = x
    torch.manual_seed(seed)
    model = CrossModalRQVAE(CrossModalRQVAEConfig(modalities=list(MODALITIES), input_dims=[EMBED_DIM] * 2))
    args = QuantizerTrainingArguments(epochs=epochs, eval_every=epochs, save_every=10**9, seed=seed, progress=False)
    t0 = time.perf_counter()
    trainer = QuantizerTrainer(model, emb, args)
    trainer.train()
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        metrics = trainer.export(Path(tmp) / "q")
        export_s = time.perf_counter() - t0
    return {
        "quantize_items": n_items,
        "quantize_epochs": epochs,
        "quantize_train_s": round(train_s, 1),
        "quantize_export_s": round(export_s, 1),
        "quantize_collisions_after": max(metrics[m]["collision_rate_after"] for m in MODALITIES),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }


REFERENCE = REPO / "benchmarks" / "results" / "instruments-top20-dense-reference.json"


def instruments_check(model_dir: Path, data_dir: Path) -> str:
    """Top-20 of the Instruments model now against the reference the dense-table implementation wrote."""
    from genrec.data import load_dataset_dir
    from genrec.pipeline import GenRecPipeline

    ref = json.loads(REFERENCE.read_text())
    if not model_dir.is_dir():
        return f"Instruments check skipped: no model folder {model_dir} (train it with benchmarks/budget.py)."
    pipe = GenRecPipeline.from_pretrained(model_dir)
    histories = load_dataset_dir(data_dir).splits["test"]["history"][: len(ref["rankings"]["0.0"]["rows"])]
    same, worst = 0, 0.0
    for corr, want in ref["rankings"].items():
        res = pipe.rank(
            histories, modality="fused", k=ref["k"], num_beams=ref["num_beams"], popularity_correction=float(corr)
        )
        same += sum(a == b for a, b in zip(res.rows, want["rows"]))
        worst = max([worst] + [abs(x - y) for a, b in zip(res.scores, want["scores"]) for x, y in zip(a, b)])
    total = sum(len(v["rows"]) for v in ref["rankings"].values())
    return (
        f"Instruments model (`{ref['model']}`), {ref['users']}, fused top-{ref['k']} with popularity correction "
        f"{' and '.join(ref['rankings'])}: {same}/{total} lists identical to the {ref['implementation']} "
        f"(commit {ref['commit']}); largest score difference {worst:.1e}."
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", default="6250,100000,1000000,10000000", help="comma-separated catalogue sizes")
    p.add_argument("--users", type=int, default=256, help="users ranked per size (fused, 20 beams)")
    p.add_argument("--json", type=Path, help="also write the rows as a JSON list here")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: measure one size
    p.add_argument("--encode", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--quantize-items",
        type=int,
        help="instead: train the quantizer on this many items x 2 modalities (--quantize-epochs) and "
        "report seconds and peak RSS (written to benchmarks/results/scale-quantize.md)",
    )
    p.add_argument("--quantize-epochs", type=int, default=1)
    p.add_argument(
        "--instruments-model",
        type=Path,
        default=REPO / "runs" / "instruments-budget" / "no_explicit",
        help="trained Instruments model whose top-20 is compared with the dense-table reference",
    )
    p.add_argument(
        "--instruments-data", type=Path, default=REPO.parent / "shared" / "data" / "amazon-instruments-mql4grec"
    )
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.one:
        print(json.dumps(measure(args.one, args.users, args.encode)))
        return
    if args.quantize_items:
        row = measure_quantize(args.quantize_items, args.quantize_epochs)
        text = "\n".join(
            [
                "# Quantizer training at scale (synthetic)",
                "",
                f"Command: `python benchmarks/scale.py --quantize-items {args.quantize_items} --quantize-epochs "
                f"{args.quantize_epochs}`. Commit {git_commit()}. Machine: {describe('cpu')}.",
                "",
                f"{row['quantize_items']:,} items x 2 modalities, {EMBED_DIM}-d clustered embeddings, default quantizer "
                "(4 x 256, cross-modal losses on; k-means initialisation, pseudo-labels and dead-code restarts on a "
                f"seeded sample of 65,536 items, every item assigned in chunks): {row['quantize_epochs']} epoch(s) in "
                f"{row['quantize_train_s']} s, export (IDs for every item, collisions resolved) {row['quantize_export_s']} s, "
                f"collision rate after resolution {row['quantize_collisions_after']}, peak RSS {row['peak_rss_mb']:.0f} MB.",
                "",
            ]
        )
        print(text)
        write_atomic(results_path("scale-quantize.md"), text)
        return
    sizes = sorted(int(s) for s in args.items.split(","))
    encode_at = max(n for n in sizes if n <= MAX_ENCODE_ITEMS)  # 10M x 384 floats alone would be 15 GB
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--users", str(args.users)] + (
            ["--encode"] if n == encode_at else []
        )
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_report(rows, args, instruments_check(args.instruments_model, args.instruments_data))


def write_report(rows: list[dict], args, check: str) -> None:
    keys = [
        "items",
        "build_s",
        "constraint_mb",
        "users_per_s",
        "peak_rss_mb",
        "tokenizer_save_s",
        "tokenizer_load_s",
        "tokenizer_mb",
        "wall_s",
    ]
    table = ["| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys)]
    table += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    encoded = next((r for r in rows if "encode_s" in r), {})
    lines = [
        "# Catalogue scale (synthetic, 2 modalities, 4 x 256 random codes)",
        "",
        f"Command: `python benchmarks/scale.py --items {args.items} --users {args.users}`. Commit {git_commit()}.",
        "",
        f"Machine: {describe('cpu')}.",
        "",
        "build_s / constraint_mb: the sparse trie of both modalities (sorted edge keys, searched with "
        "`searchsorted`); users_per_s: fused ranking, 20 beams per modality, a randomly initialised `cpu`-profile "
        f"generator, {args.users} users with 20-item histories, batch 64; peak_rss_mb: the size's own process; "
        "tokenizer: `save_pretrained` / `AutoTokenizer.from_pretrained` (codes in catalog_codes.safetensors).",
        "",
        *table,
        "",
    ]
    if encoded:
        lines += [
            f"Quantizer encoding (cold start): {encoded['encode_items']:,} new items, {EMBED_DIM}-d embeddings, "
            f"default quantizer shape, against an existing catalogue of as many IDs: {encoded['encode_s']} s "
            f"(IDs unique: {encoded['encode_ids_unique']}); that size's peak RSS includes the "
            f"{encoded['encode_items'] * EMBED_DIM * 4 / 2**30:.1f} GB of embeddings.",
            "",
        ]
    base = rows[0]["users_per_s"]
    lines += [
        f"Ranking speed at {r['items']:,} items: {r['users_per_s'] / base:.2f} x the {rows[0]['items']:,}-item figure."
        for r in rows[1:]
    ] + ["", check, ""]
    text = "\n".join(lines)
    print(text)
    write_atomic(results_path("scale.md"), text)
    if args.json:
        write_atomic(args.json, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
