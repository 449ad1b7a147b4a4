"""A dataset folder with a seeded share of another's users, for levers measured where a dataset is small
(many epochs in a budget: the regime where the model over-fits).

    python benchmarks/subsample.py --data ../shared/data/amazon-instruments-mql4grec --share 0.3333 \
        --out runs/sub/mql4grec-third

The users' lines of ``sequences.jsonl`` are shuffled with ``--seed`` and the first ``share`` of them kept (in
line order as text); the item files (``items.jsonl``, semantic IDs, embeddings) are linked, not copied, so
item ids and IDs stay those of the source. ``interactions.csv`` is left out (``sequences.jsonl`` says it all).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from genrec.data.loading import EMBEDDING_FILES, ITEMS_FILE, SEQUENCES_FILE, SID_FILES

ITEM_FILES = (ITEMS_FILE, *SID_FILES.values(), *EMBEDDING_FILES.values())


def subsample(data: Path, out: Path, share: float, seed: int) -> int:
    if not 0 < share <= 1:
        sys.exit(f"--share must be in (0, 1], got {share}")
    if out.exists():
        sys.exit(f"{out} exists: choose a new folder")
    lines = (data / SEQUENCES_FILE).read_text().splitlines()
    random.Random(seed).shuffle(lines)
    kept = sorted(lines[: int(len(lines) * share)])
    out.mkdir(parents=True)
    for name in ITEM_FILES:
        if (data / name).is_file():
            (out / name).symlink_to((data / name).resolve())
    (out / SEQUENCES_FILE).write_text("\n".join(kept) + "\n")
    return len(kept)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--share", type=float, default=1 / 3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    n = subsample(a.data, a.out, a.share, a.seed)
    print(f"{a.out}: {n} users of {a.data}")


if __name__ == "__main__":
    main()
