"""`genrec demo`, the README's main job, end to end on a small synthetic catalogue (about a minute)."""

import json
import re

import pytest

from genrec.baselines import PopularityRecommender
from genrec.cli import main as cli
from genrec.data import load_dataset_dir
from genrec.eval import ranking_metrics
from genrec.pipeline import GenRecPipeline


def test_demo_runs_every_step_and_ends_with_its_summary_line(tmp_path, capsys, recwarn):
    out = tmp_path / "demo"
    assert (
        cli(
            [
                "demo",
                "--out",
                str(out),
                "--n-items",
                "200",
                "--n-users",
                "300",
                "--epochs",
                "0.3",
                "--quantizer-epochs",
                "3",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    printed = captured.out
    # quiet: no warning raised on the way (pytest collects them: recwarn) and no "Warning" line printed
    assert not [f"{w.category.__name__}: {w.message}" for w in recwarn]
    assert "Warning" not in printed + captured.err
    assert [f"[{n}/6]" in printed for n in range(1, 7)] == [True] * 6
    last = printed.strip().splitlines()[-1]
    match = re.fullmatch(r"demo HR@10=(\d\.\d{4}) NDCG@10=(\d\.\d{4}) popularity_HR@10=(\d\.\d{4})", last)
    assert match, last

    # The printed figures are the saved metrics and an independent popularity ranking of the same split.
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    assert float(match[1]) == pytest.approx(metrics["HR@10"], abs=5e-5)
    assert float(match[2]) == pytest.approx(metrics["NDCG@10"], abs=5e-5)
    data = load_dataset_dir(out / "data")
    test = data.splits["test"]
    assert metrics["n_users"] == len(test) == 300
    popular = ranking_metrics(PopularityRecommender().fit(data).rank(test["history"]), test["target"])
    assert float(match[3]) == pytest.approx(popular["HR@10"], abs=5e-5)

    # Every artifact is left in place and loads: quantizer codes, tokenizer, pipeline.
    assert (out / "quantizer" / "quantizer_metrics.json").is_file()
    pipe = GenRecPipeline.from_pretrained(out / "model")
    assert pipe.quantizer_path is not None and len(pipe.tokenizer.item_ids) == 200
    assert pipe.tokenizer.num_levels("text") == 3 and pipe.tokenizer.codebook_size("image") == 64
