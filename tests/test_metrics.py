"""genrec.eval: the evaluate metric modules and ranking_metrics against hand-computed values."""

import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from genrec.errors import GenRecError
from genrec.eval import (
    load_metric,
    long_tail_mask,
    metrics_table,
    ranking_metrics,
    train_item_counts,
    train_sequences,
    write_metrics,
)

# user 0: target at rank 0; user 1: rank 9; user 2: absent; user 3: rank 4; user 4: rank 1, short list
PREDS = [list(range(10)), list(range(10, 20)), list(range(20, 30)), [30, 31, 32, 33, 34, 35], [40, 41]]
TARGETS = [0, 19, 99, 34, 41]


def g(rank):
    return 1 / math.log2(rank + 2)


def test_hit_rate_module_hand_values():
    hr = load_metric("hit_rate")
    out = hr.compute(predictions=PREDS, references=TARGETS, k=[1, 5, 10])
    assert out == pytest.approx({"HR@1": 1 / 5, "HR@5": 3 / 5, "HR@10": 4 / 5})
    assert hr.compute(predictions=PREDS, references=TARGETS, k=2) == pytest.approx({"HR@2": 2 / 5})
    # a cut-off deeper than every list counts the absent target as a miss
    assert hr.compute(predictions=PREDS, references=TARGETS, k=100)["HR@100"] == pytest.approx(4 / 5)


def test_ndcg_module_hand_values():
    ndcg = load_metric("ndcg")
    out = ndcg.compute(predictions=PREDS, references=TARGETS, k=[5, 10])
    assert out["NDCG@5"] == pytest.approx((g(0) + g(4) + g(1)) / 5)
    assert out["NDCG@10"] == pytest.approx((g(0) + g(9) + g(4) + g(1)) / 5)
    assert ndcg.compute(predictions=[[7, 8]], references=[8], k=1) == {"NDCG@1": 0.0}
    assert ndcg.compute(predictions=[[8, 7]], references=[8], k=1) == {"NDCG@1": 1.0}


def test_modules_accept_string_ids_and_first_occurrence_counts():
    hr, ndcg = load_metric("hit_rate"), load_metric("ndcg")
    assert hr.compute(predictions=[["a", "b"], ["c"]], references=["b", "x"], k=[1, 2]) == {"HR@1": 0.0, "HR@2": 0.5}
    assert ndcg.compute(predictions=[[5, 3, 3]], references=[3], k=3)["NDCG@3"] == pytest.approx(g(1))


@pytest.mark.parametrize("k", [0, -1, [], [5, 0], 2.5])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k must be"):
        load_metric("hit_rate").compute(predictions=PREDS, references=TARGETS, k=k)


def test_unknown_metric_name():
    with pytest.raises(GenRecError, match="unknown genrec metric 'mrr'"):
        load_metric("mrr")


def test_ranking_metrics_core_keys_and_values():
    m = ranking_metrics(PREDS, TARGETS)
    assert list(m) == ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "n_users"]
    assert m["n_users"] == 5
    assert m["HR@10"] == pytest.approx(4 / 5)
    assert m["NDCG@10"] == pytest.approx((g(0) + g(9) + g(4) + g(1)) / 5)
    # numpy rows are accepted as well as lists
    assert ranking_metrics(np.array([[1, 2], [3, 4]]), [2, 5]) == ranking_metrics([[1, 2], [3, 4]], [2, 5])
    with pytest.raises(GenRecError, match="no users"):
        ranking_metrics([], [])
    with pytest.raises(ValueError, match="Mismatch in the number of predictions"):
        ranking_metrics([[1], [2]], [1])


def test_ranking_metrics_extras():
    preds = [[0, 1, 2], [2, 3, 4], [5, 0, 1]]
    targets = [1, 9, 5]
    counts = np.array([50, 40, 30, 20, 10, 5, 1, 0, 0, 0])  # head (top 20% of 10 items) = rows 0, 1
    m = ranking_metrics(
        preds, targets, n_items=10, item_counts=counts, train_items={0, 1, 2, 3, 4}, invalid=3, generated=12
    )
    assert m["coverage@10"] == pytest.approx(6 / 10)
    assert m["long_tail@10"] == pytest.approx(5 / 9)  # slots 9, head items 0,1 appear 4 times
    assert m["invalid_id_rate"] == pytest.approx(0.25)
    # cold-start users: targets 9 and 5 (never in training); user 2 has its target at rank 0
    assert m["cold_start/n_users"] == 2
    assert m["cold_start/HR@1"] == pytest.approx(0.5)
    assert m["cold_start/NDCG@10"] == pytest.approx(0.5)
    none_cold = ranking_metrics(preds, targets, train_items=range(10))
    assert none_cold["cold_start/n_users"] == 0 and "cold_start/HR@10" not in none_cold
    # a model whose catalogue extends the dataset's (items added after training): rows 10, 11 are tail
    grown = ranking_metrics(preds + [[10, 0, 11]], targets + [10], n_items=12, item_counts=counts)
    assert grown["long_tail@10"] == pytest.approx(7 / 12) and grown["coverage@10"] == pytest.approx(8 / 12)


def test_long_tail_mask_ties_by_row_order():
    mask = long_tail_mask(np.array([3, 7, 7, 1, 0, 7, 2, 2, 0, 0]))
    assert np.flatnonzero(~mask).tolist() == [1, 2]  # ceil(0.2 * 10) = 2 head items; ties -> lower row


def test_train_sequences_and_counts(synth_dir):
    from genrec.data import load_dataset_dir

    data = load_dataset_dir(synth_dir)
    seqs = train_sequences(data)
    for user, seq in list(data.sequences.items())[:50]:
        if len(seq) > 3:
            assert seqs[user] == seq[:-2]
    counts = train_item_counts(data)
    assert counts.shape == (data.n_items,)
    assert counts.sum() == sum(len(s) for s in seqs.values())


def test_write_metrics_json_and_table(tmp_path, capsys):
    m = ranking_metrics(PREDS, TARGETS)
    out = write_metrics(m, tmp_path / "sub" / "metrics.json", name="toy")
    assert json.loads(out.read_text()) == m
    printed = capsys.readouterr().out
    assert "| toy | 0.2000 | 0.6000 | 0.8000 |" in printed
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert metrics_table({"a": {"HR@1": 0.5}, "b": {"n_users": 3}}).splitlines()[2:] == [
        "| a | 0.5000 |  |",
        "| b |  | 3 |",
    ]


def test_load_metric_offline_without_network(tmp_path):
    """evaluate.load on the packaged script path must not open a socket (fresh process, fresh caches)."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise RuntimeError('network attempted')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "from genrec.eval import load_metric\n"
        "print(load_metric('ndcg').compute(predictions=[[1, 2]], references=[2], k=2)['NDCG@2'])\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir()
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert float(res.stdout.strip().splitlines()[-1]) == pytest.approx(g(1))


def test_beyond_accuracy_module_against_hand_computed_values():
    ba = load_metric("beyond_accuracy")
    preds = [[0, 1, 2], [0, 1, 3]]
    counts = np.array([6, 2, 0, 0])  # 8 interactions, 4 items
    groups = [0, 0, 1, 1]
    emb = np.array([[1.0, 0], [1, 0], [0, 1], [np.nan, np.nan]])
    m = ba.compute(predictions=preds, item_counts=counts, k=3, item_groups=groups, item_embeddings=emb)
    assert m["coverage@3"] == pytest.approx(4 / 4)
    # exposure 2, 2, 1, 1: Gini = sum_i (2i - n - 1) x_(i) / (n sum x) over x sorted = (1, 1, 2, 2)
    assert m["gini@3"] == pytest.approx((-3 * 1 - 1 * 1 + 1 * 2 + 3 * 2) / (4 * 6))
    p = (counts + 1) / (8 + 4)
    assert m["novelty@3"] == pytest.approx(np.mean(-np.log2(p[[0, 1, 2, 0, 1, 3]])))
    # percentiles by training count, ties share their mean rank: items 2, 3 -> 0.5/3, item 1 -> 2/3, item 0 -> 1
    assert m["popularity_percentile@3"] == pytest.approx(np.mean([1, 2 / 3, 0.5 / 3, 1, 2 / 3, 0.5 / 3]))
    assert m["diversity@3"] == pytest.approx(2 / 3)  # two first-level groups in each list of three
    # list 1: pairs (0,1) cos 1, (0,2) 0, (1,2) 0 -> mean distance 2/3; list 2: item 3 has no embedding -> 0
    assert m["embedding_diversity@3"] == pytest.approx((2 / 3 + 0) / 2)
    even = ba.compute(predictions=[[0], [1], [2], [3]], item_counts=counts, k=1)
    assert even["gini@1"] == pytest.approx(0.0) and "diversity@1" not in even
    with pytest.raises(ValueError, match="must be in 0..3"):
        ba.compute(predictions=[[7]], item_counts=counts, k=1)


def test_ranking_metrics_report_beyond_accuracy():
    counts = np.array([50, 40, 30, 20, 10, 5, 1, 0, 0, 0])
    m = ranking_metrics([[0, 1, 2], [0, 1, 2]], [1, 9], n_items=10, item_counts=counts, item_groups=[0, 0, 1] + [2] * 7)
    assert m["gini@10"] > 0.5 and m["diversity@10"] == pytest.approx(2 / 3)
    assert {"novelty@10", "popularity_percentile@10"} <= set(m) and m["coverage@10"] == pytest.approx(0.3)
