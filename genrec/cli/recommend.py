"""genrec recommend: next items for one history, as a table or JSON."""

from __future__ import annotations

import json

# Literals, not imports: `genrec --help` imports every subcommand and must not load torch.
FUSION_RULES = ("macrec", "rrf", "sum")  # genrec.generation.fusion.FUSION_RULES
DEFAULT_NUM_BEAMS = 20  # genrec.pipeline.DEFAULT_NUM_BEAMS (MACRec / MQL4GRec)


def add_arguments(p):
    p.add_argument("--model", required=True, help="pipeline folder (genrec train output) or Hub repo id")
    p.add_argument("--history", nargs="+", required=True, metavar="ITEM_ID", help="item ids, oldest first")
    p.add_argument("--k", type=int, default=10, help="items to return (default 10, at most --num-beams)")
    p.add_argument("--modality", choices=["text", "image", "fused"], default="fused",
                   help="which semantic IDs to generate (default: both, fused)")
    p.add_argument("--fusion", choices=FUSION_RULES, default="macrec", help="how fused lists merge (default MACRec)")
    p.add_argument("--num-beams", type=int, default=DEFAULT_NUM_BEAMS, help="beams per modality (MACRec: 20)")
    p.add_argument("--exclude-history", action="store_true", help="never recommend an item of the history")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")


def run(args):
    from ..pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(args.model, device=args.device)
    # Ids on the command line are strings; the catalogue compares ids as text, so 12 and "12" agree.
    rec = pipe.recommend(args.history, k=args.k, modality=args.modality, fusion=args.fusion,
                         exclude_history=args.exclude_history, num_beams=args.num_beams)
    if args.json:
        print(json.dumps({"history": args.history, "k": args.k, "modality": args.modality, "fusion": args.fusion,
                          "num_beams": args.num_beams, **rec.to_dict()}))
        return 0
    width = max([7] + [len(str(i)) for i in rec.item_ids])
    print(f"{'rank':>4}  {'item_id':<{width}}  {'score':>10}  from")
    for n, (item, score, src) in enumerate(zip(rec.item_ids, rec.scores, rec.sources), 1):
        print(f"{n:>4}  {str(item):<{width}}  {score:>10.4f}  {'+'.join(src)}")
    return 0
