"""NDCG @ K for leave-one-out next-item recommendation (an ``evaluate`` metric module)."""

import datasets
import evaluate
import numpy as np

from genrec.eval.target_positions import parse_ks, target_ranks

_DESCRIPTION = """\
Normalised discounted cumulative gain at K (NDCG@K) with one relevant item per user (leave-one-out):
1 / log2(rank + 2) when the target sits at 0-based position `rank` < K of the user's ranked list, else 0,
averaged over all users (the ideal DCG is 1). This is the protocol of SASRec, TIGER, MQL4GRec and MACRec.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of item ids, int or str): ranked item ids per user, best first.
    references (`list` of item ids): the target item of each user.
    k (`int` or `list` of `int`, defaults to [5, 10], what MACRec reports; NDCG@1 equals HR@1): cut-offs.
Returns:
    `dict` with one float per cut-off, keyed "NDCG@<k>".
Examples:
    >>> ndcg = genrec.eval.load_metric("ndcg")
    >>> ndcg.compute(predictions=[[3, 1, 2], [5, 6, 7]], references=[1, 9], k=2)
    {'NDCG@2': 0.31546487678572877}
"""

_CITATION = """\
@article{jarvelin2002cumulated,
  title={Cumulated gain-based evaluation of IR techniques},
  author={J{\\"a}rvelin, Kalervo and Kek{\\"a}l{\\"a}inen, Jaana},
  journal={ACM Transactions on Information Systems}, volume={20}, number={4}, pages={422--446}, year={2002}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NDCG(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Value("int64")}
                ),
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("string")), "references": datasets.Value("string")}
                ),
            ],
        )

    def _compute(self, predictions, references, k=(5, 10)):
        ranks = target_ranks(predictions, references)
        gain = np.where(ranks >= 0, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
        return {f"NDCG@{c}": float(np.mean(np.where(ranks < c, gain, 0.0))) if len(ranks) else 0.0 for c in parse_ks(k)}
