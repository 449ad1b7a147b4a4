"""Benchmark arms train what ran when their results were written, not what today's profile says (issue 34)."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_lever_arms_start_from_the_frozen_profile_they_ran_on(tmp_path, monkeypatch):
    from genrec.trainers import load_profile
    from genrec.trainers.generator_config import make_training_args

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import levers

    ALIGNMENT_TASKS = levers.ALIGNMENT_TASKS
    frozen = load_profile(levers.FROZEN_PROFILE)
    assert frozen["model"]["dropout_rate"] == 0.1 and set(ALIGNMENT_TASKS) <= set(frozen["args"]["tasks"])
    _, model, train = levers.arm_settings("alignment_quarter")
    args = make_training_args(tmp_path, str(levers.FROZEN_PROFILE), **train)
    # the arm down-weights the cross-modal tasks: it must train them (the shipped cpu profile has none)
    assert set(ALIGNMENT_TASKS) <= set(args.tasks) and set(args.task_weights) == set(ALIGNMENT_TASKS)
    assert not set(ALIGNMENT_TASKS) & set(make_training_args(tmp_path, "cpu").tasks)
    sys.modules.pop("levers", None)
