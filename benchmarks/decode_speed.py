"""Decoding speed: HF generate() + Python prefix_allowed_tokens_fn trie (how MQL4GRec/MACRec decode)
vs generate() + our vectorised TrieConstrainedLogitsProcessor vs our fixed-length fast path.

Same model, same inputs, one run: 20 beams, 20 returned IDs per user, the 6,250-item Instruments
catalogue with its released 4-level text IDs, histories of 20 items. The generator has MACRec's
size (4+4 layers, d_model 128, 6 heads, d_kv 64, d_ff 1024) with random weights (seeded): decoding
cost does not depend on the weights, and near-uniform random scores are the hard case for
identical rankings. Histories are 20 catalogue items drawn at random (seeded).

    python benchmarks/decode_speed.py [--users 64] [--batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe, results_path, write_atomic
from transformers import LogitsProcessorList

import genrec.modeling  # noqa: F401
from genrec.data import load_dataset_dir
from genrec.generation import IDConstraint, TrieConstrainedLogitsProcessor, constrained_beam_search
from genrec.modeling import GenRecT5Config, GenRecT5ForConditionalGeneration
from genrec.tokenizer import SemanticIDTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "amazon-instruments-mql4grec"
BEAMS, HISTORY, SEED = 20, 20, 0


def prefix_fn_baseline(tok, modality):
    """A dict-of-dicts trie over [decoder start] + ID + [EOS], queried per beam in Python (MQL4GRec's way)."""
    trie: dict = {}
    for ids in tok.item_token_ids(modality).tolist():
        if ids[0] < 0:
            continue
        node = trie
        for t in [tok.pad_token_id] + ids + [tok.eos_token_id]:
            node = node.setdefault(t, {})

    def allowed(batch_id, sent):
        node = trie
        for t in sent.tolist():
            node = node.get(t)
            if node is None:
                return []
        return list(node)

    return allowed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32, help="users per generate() call, same for all methods")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes; each batch keeps its fastest")
    ap.add_argument("--data", type=Path, default=DATA, help="dataset folder whose catalogue and IDs are decoded")
    args = ap.parse_args()

    data = load_dataset_dir(args.data)
    tok = SemanticIDTokenizer.from_codes(data.item_ids, data.semantic_ids)
    torch.manual_seed(SEED)
    cfg = GenRecT5Config(
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    model = GenRecT5ForConditionalGeneration(cfg).eval()
    rng = np.random.default_rng(SEED)
    histories = [rng.choice(data.n_items, HISTORY, replace=False).tolist() for _ in range(args.users)]
    batches = []
    for s in range(0, args.users, args.batch_size):
        enc = tok.pad(
            [
                {"input_ids": tok.encode_task_input("seqrec", h, "text", max_items=HISTORY)}
                for h in histories[s : s + args.batch_size]
            ],
            return_tensors="pt",
        )
        batches.append((enc["input_ids"], enc["attention_mask"]))

    common = dict(
        num_beams=BEAMS,
        num_return_sequences=BEAMS,
        max_new_tokens=tok.num_levels("text") + 1,
        length_penalty=0.0,
        early_stopping=True,
        do_sample=False,
    )
    prefix_fn = prefix_fn_baseline(tok, "text")
    processor = TrieConstrainedLogitsProcessor(tok, "text")
    constraint = IDConstraint.from_tokenizer(tok, "text")
    levels = tok.num_levels("text")

    def run_prefix(ids, mask):
        out = model.generate(input_ids=ids, attention_mask=mask, prefix_allowed_tokens_fn=prefix_fn, **common)
        return out[:, 1 : levels + 1].reshape(len(ids), BEAMS, levels)

    def run_processor(ids, mask):
        out = model.generate(
            input_ids=ids, attention_mask=mask, logits_processor=LogitsProcessorList([processor]), **common
        )
        return out[:, 1 : levels + 1].reshape(len(ids), BEAMS, levels)

    def run_fast(ids, mask):
        return constrained_beam_search(model, ids, mask, constraint, 0, num_beams=BEAMS).tokens

    methods = {
        "generate + prefix_allowed_tokens_fn (baseline)": run_prefix,
        "generate + TrieConstrainedLogitsProcessor": run_processor,
        "fast path (constrained_beam_search)": run_fast,
    }
    # Other work on a shared machine slows whichever method runs at that moment: methods run
    # interleaved per batch, --repeats times, and each batch counts its fastest time per method.
    results, best = {}, {n: [float("inf")] * len(batches) for n in methods}
    with torch.no_grad():
        for fn in methods.values():
            fn(*[t[:2] for t in batches[0]])  # warm-up
        for _ in range(args.repeats):
            for b, batch in enumerate(batches):
                for name, fn in methods.items():
                    t0 = time.perf_counter()
                    results.setdefault(name, {})[b] = fn(*batch)
                    best[name][b] = min(best[name][b], time.perf_counter() - t0)
    results = {n: torch.cat([r[b] for b in range(len(batches))]) for n, r in results.items()}
    speed = {n: args.users / sum(t) for n, t in best.items()}
    names = list(methods)
    base = results[names[0]]
    identical = all(torch.equal(base, results[n]) for n in names[1:])
    speedup = speed[names[2]] / speed[names[0]]

    lines = [
        "# Decoding speed: constrained beam search",
        "",
        f"Machine: {describe()}. Seed {SEED}.",
        f"Setup: {BEAMS} beams, {BEAMS} IDs returned per user, {len(tok.item_ids):,}-item catalogue "
        f"(Instruments text IDs, {levels} levels x {tok.codebook_size('text')} codes), histories of {HISTORY} items, "
        f"{args.users} users in batches of {args.batch_size}; MACRec-size GenRecT5 (random weights). Methods run "
        f"interleaved per batch, {args.repeats} passes, fastest time per batch (the machine is shared).",
        f"Command: `python benchmarks/decode_speed.py --users {args.users} --batch-size {args.batch_size} "
        f"--repeats {args.repeats}`",
        "",
        "| method | users/s | x baseline | top-20 identical to baseline |",
        "|---|---:|---:|---|",
    ]
    for n in names:
        same = "-" if n == names[0] else str(torch.equal(base, results[n])).lower()
        lines.append(f"| {n} | {speed[n]:.1f} | {speed[n] / speed[names[0]]:.2f} | {same} |")
    lines += ["", f"fast_path_speedup={speedup:.2f} identical_topk={str(identical).lower()}"]
    text = "\n".join(lines) + "\n"
    write_atomic(results_path("decode_speed.md"), text)
    print(text, end="")


if __name__ == "__main__":
    main()
