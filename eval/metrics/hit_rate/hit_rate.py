"""Hit rate @ K for leave-one-out next-item recommendation (an ``evaluate`` metric module)."""

import datasets
import evaluate
import numpy as np

from genrec.eval.target_positions import parse_ks, target_ranks

_DESCRIPTION = """\
Hit rate at K (HR@K): the share of users whose single held-out target item is among the first K items
of their ranked list. With one relevant item per user (leave-one-out), HR@K equals Recall@K. This is
the protocol of SASRec, TIGER, MQL4GRec and MACRec: the whole catalogue is ranked and every user counts;
a target missing from a (possibly shorter than K) list is a miss.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of item ids, int or str): ranked item ids per user, best first.
    references (`list` of item ids): the target item of each user.
    k (`int` or `list` of `int`, defaults to [1, 5, 10], what MACRec reports): cut-offs.
Returns:
    `dict` with one float per cut-off, keyed "HR@<k>".
Examples:
    >>> hr = genrec.eval.load_metric("hit_rate")
    >>> hr.compute(predictions=[[3, 1, 2], [5, 6, 7]], references=[1, 9], k=[1, 2])
    {'HR@1': 0.0, 'HR@2': 0.5}
"""

_CITATION = """\
@inproceedings{kang2018sasrec,
  title={Self-Attentive Sequential Recommendation}, author={Kang, Wang-Cheng and McAuley, Julian},
  booktitle={ICDM}, year={2018}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HitRate(evaluate.Metric):
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

    def _compute(self, predictions, references, k=(1, 5, 10)):
        ranks = target_ranks(predictions, references)
        hit = ranks >= 0
        return {f"HR@{c}": float(np.mean(hit & (ranks < c))) if len(ranks) else 0.0 for c in parse_ks(k)}
