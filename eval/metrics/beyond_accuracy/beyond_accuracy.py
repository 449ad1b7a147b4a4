"""Beyond-accuracy measures of top-K recommendation lists (an ``evaluate`` metric module)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
What a set of top-K lists does besides hitting targets: how much of the catalogue it shows, how evenly,
how unpopular and how varied. Every list is cut at K; all measures are over the whole catalogue.

* coverage@K: distinct recommended items / catalogue size.
* gini@K: Gini index of item exposure (times each catalogue item is recommended, unrecommended items
  counted as 0): 0 = every item equally exposed, 1 = one item takes all slots.
* novelty@K: mean self-information -log2 p(i) of the recommended items, p(i) = (training interactions
  + 1) / (all interactions + catalogue size) (add-one smoothing, so never-seen items are finite).
* popularity_percentile@K: mean percentile (0 = least, 1 = most popular) of the recommended items'
  training interactions within the catalogue (ties share their mean rank).
* diversity@K (with ``item_groups``): per list, distinct groups / list length, averaged; genrec passes
  the first level of the semantic IDs, so it is the share of distinct coarse categories in a list.
* embedding_diversity@K (with ``item_embeddings``): per list of >= 2 items, mean pairwise cosine distance
  (1 - cos) of the items' embeddings, averaged (intra-list diversity, Ziegler et al. 2005).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of int): ranked catalogue rows per user, best first.
    item_counts (`list` of int): training interactions per catalogue row (its length is the catalogue size).
    k (`int`, defaults to 10): cut-off.
    item_groups (`list` of int, optional): a group per catalogue row (e.g. the first semantic-ID level).
    item_embeddings (array [n_items, d], optional): item embeddings (NaN rows are skipped).
Returns:
    `dict` of floats keyed "<measure>@<k>".
Examples:
    >>> ba = genrec.eval.load_metric("beyond_accuracy")
    >>> ba.compute(predictions=[[0, 1], [0, 2]], item_counts=[5, 1, 0, 0], k=2)["coverage@2"]
    0.75
"""

_CITATION = """\
@inproceedings{ziegler2005improving,
  title={Improving Recommendation Lists Through Topic Diversification},
  author={Ziegler, Cai-Nicolas and McNee, Sean M. and Konstan, Joseph A. and Lausen, Georg},
  booktitle={WWW}, year={2005}
}
"""


def gini(exposure: np.ndarray) -> float:
    x = np.sort(np.asarray(exposure, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def _percentiles(counts: np.ndarray) -> np.ndarray:
    order = np.argsort(counts, kind="stable")
    ranks = np.empty(len(counts), dtype=np.float64)
    ranks[order] = np.arange(len(counts))
    # ties share the mean of their ranks
    uniq, inverse = np.unique(counts, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return mean_rank[inverse] / max(len(counts) - 1, 1)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BeyondAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
        )

    def _compute(self, predictions, item_counts, k=10, item_groups=None, item_embeddings=None):
        counts = np.asarray(item_counts, dtype=np.float64)
        n_items = len(counts)
        lists = [np.asarray(p[:k], dtype=np.int64) for p in predictions]
        slots = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
        if len(slots) and (slots.min() < 0 or slots.max() >= n_items):
            raise ValueError(f"recommended rows must be in 0..{n_items - 1} (the length of item_counts)")
        out = {
            f"coverage@{k}": len(np.unique(slots)) / n_items if n_items else 0.0,
            f"gini@{k}": gini(np.bincount(slots, minlength=n_items)),
        }
        p = (counts + 1) / (counts.sum() + n_items)
        out[f"novelty@{k}"] = float(np.mean(-np.log2(p[slots]))) if len(slots) else 0.0
        out[f"popularity_percentile@{k}"] = float(np.mean(_percentiles(counts)[slots])) if len(slots) else 0.0
        if item_groups is not None:
            groups = np.asarray(item_groups)
            shares = [len(np.unique(groups[lst])) / len(lst) for lst in lists if len(lst)]
            out[f"diversity@{k}"] = float(np.mean(shares)) if shares else 0.0
        if item_embeddings is not None:
            emb = np.asarray(item_embeddings, dtype=np.float64)
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            dists = []
            for lst in lists:
                e = emb[lst[lst < len(emb)]]  # rows past the embeddings (items added later) are skipped
                e = e[~np.isnan(e).any(axis=1)]
                if len(e) >= 2:
                    sim = e @ e.T
                    dists.append(1 - (sim.sum() - np.trace(sim)) / (len(e) * (len(e) - 1)))
            out[f"embedding_diversity@{k}"] = float(np.mean(dists)) if dists else 0.0
        return out
