"""Top-20 reference lists of one trained model, to show that a change to the ranking code ranks exactly as before.

    python benchmarks/ranking_reference.py --model M --data D --write benchmarks/results/REF.json   # before
    python benchmarks/ranking_reference.py --model M --data D --check benchmarks/results/REF.json   # after

The lists are the first ``--users`` test users' fused top-20 (20 beams) at popularity corrections 0 and 0.3,
in catalogue rows, with their scores. ``--check`` prints how many lists are identical and the largest score
difference, and exits 1 when a list differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from machine import provenance, write_atomic

CORRECTIONS = ("0.0", "0.3")


def rankings(model: Path, data: Path, users: int) -> dict:
    from genrec.data import load_dataset_dir
    from genrec.pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(model)
    histories = load_dataset_dir(data, max_history=pipe.max_history).splits["test"]["history"][:users]
    out = {}
    for corr in CORRECTIONS:
        res = pipe.rank(histories, modality="fused", k=20, num_beams=20, popularity_correction=float(corr))
        out[corr] = {"rows": res.rows, "scores": res.scores}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--users", type=int, default=300)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="write the reference lists here")
    mode.add_argument("--check", type=Path, help="compare with the reference lists here")
    args = p.parse_args()
    got = rankings(args.model, args.data, args.users)
    if args.write:
        run = provenance()
        write_atomic(
            args.write,
            json.dumps(
                {
                    "commit": run["commit"],
                    "command": run["command"],
                    "model": str(args.model),
                    "users": f"the first {args.users} test users of {args.data.name}",
                    "k": 20,
                    "num_beams": 20,
                    "rankings": got,
                }
            )
            + "\n",
        )
        print(f"wrote {args.write}: {len(CORRECTIONS) * args.users} lists")
        return 0
    ref = json.loads(args.check.read_text())
    same = worst = 0
    for corr, want in ref["rankings"].items():
        same += sum(a == b for a, b in zip(got[corr]["rows"], want["rows"]))
        worst = max([worst] + [abs(x - y) for a, b in zip(got[corr]["scores"], want["scores"]) for x, y in zip(a, b)])
    total = sum(len(v["rows"]) for v in ref["rankings"].values())
    print(
        f"{same}/{total} lists identical to the reference of commit {ref['commit']}; largest score difference "
        f"{worst:.1e}"
    )
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
