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
    arm = levers.arm_settings("alignment_quarter+dropout0")
    recipe = arm.recipe()
    assert recipe["profile"] == frozen and recipe["model"] == {"dropout_rate": 0.0}
    again = levers.Arm.from_recipe(recipe, tmp_path)  # what a result file's recipe trains
    args = make_training_args(tmp_path, again.profile, **again.args)
    # the arm down-weights the cross-modal tasks: it must train them (the shipped cpu profile has none)
    assert set(ALIGNMENT_TASKS) <= set(args.tasks) and set(args.task_weights) == set(ALIGNMENT_TASKS)
    assert not set(ALIGNMENT_TASKS) & set(make_training_args(tmp_path, "cpu").tasks)
    sys.modules.pop("levers", None)


def test_an_arm_reuses_only_a_run_of_its_own_recipe(synth_dir, quantizer_dir, tmp_path, monkeypatch):
    """The harness's cached run: a finished arm is kept on --resume when its saved recipe is the same, and a
    run folder trained from another recipe is refused naming the settings that differ."""
    import json

    import pytest

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from arms import Arm, recipe_file, train_arm

    arm = Arm("tiny", args={"seed": 1, "max_steps": 2})
    out = tmp_path / "model"
    recipe = train_arm(arm, synth_dir, out, quantizer=quantizer_dir)
    assert json.loads(recipe_file(out).read_text()) == recipe == arm.recipe()
    assert json.loads((out / "genrec_train_config.json").read_text())["log_history"][-1]["step"] == 2
    made = (out / "config.json").stat().st_mtime_ns
    assert train_arm(arm, synth_dir, out, resume=True, quantizer=quantizer_dir) == recipe
    assert (out / "config.json").stat().st_mtime_ns == made  # reused, not trained again
    other = arm.with_args(learning_rate=0.5) + Arm("tiny", model={"dropout_rate": 0.3})
    with pytest.raises(SystemExit, match=r"differs in \['args.learning_rate', 'model.dropout_rate'\]"):
        train_arm(other, synth_dir, out, resume=True, quantizer=quantizer_dir)
    with pytest.raises(ValueError, match="different profiles"):
        arm + Arm("cpu")
    for name in ("arms", "machine"):
        sys.modules.pop(name, None)


def test_budget_benchmark_runs_on_a_text_only_dataset_and_writes_nothing_when_smoke_run(
    synth_dir, quantizer_dir, tmp_path, monkeypatch, capsys, caplog
):
    """benchmarks/budget.py takes any dataset folder (issue 33): on text IDs only, genrec trains the profile's
    tasks those IDs allow and ranks text, tiger (the same run there) is skipped saying why, and a smoke run
    (--max-steps / --max-users) prints its tables and writes no result file."""
    import logging
    import shutil

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import budget

    data = tmp_path / "text-only"
    data.mkdir()
    for name in ("sequences.jsonl", "items.jsonl"):
        shutil.copy(synth_dir / name, data / name)
    shutil.copy(quantizer_dir / "sid_text.npy", data / "sid_text.npy")
    results = sorted((BENCHMARKS / "results").iterdir())
    argv = ["budget.py", "--data", str(data), "--variants", "genrec,tiger,popularity", "--run-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [*argv, "--max-steps", "2", "--max-users", "8", "--num-beams", "10"])
    with caplog.at_level(logging.INFO, logger="benchmarks.budget"):
        budget.main()
    out = capsys.readouterr().out
    assert "| genrec / text |" in out and "| popularity |" in out and "tiger" not in out.split("smoke run")[0]
    assert "not running tiger: the same run as genrec here" in caplog.text
    assert "smoke run" in out and sorted((BENCHMARKS / "results").iterdir()) == results
    # the report names the profile's own settings (the shipped cpu profile's d_ff and tasks here)
    from argparse import Namespace

    from genrec.data import load_dataset_dir

    header = "\n".join(
        budget.report_header(
            Namespace(profile="cpu", epochs=None, max_train_minutes=60, seed=1, num_beams=20, data=data),
            load_dataset_dir(data),
            *("command", "machine", 60.0, {}, {}),
        )
    )
    assert '"d_ff": 512' in header and '"tasks": ["seqrec", "seqimage"]' in header
    assert budget.variant_plan("genrec", ["text", "image"]) == (None, "fused")
    assert budget.variant_plan("all_tasks", ["text"]) == (["seqrec"], "text")
    assert budget.variant_plan("tiger", ["image"]) is None
    sys.modules.pop("budget", None)


def test_budget_pace_leaves_evaluations_out_and_shows_a_slow_stretch():
    """Steps per second between training logs, skipping a stretch that held an evaluation: a run slowed by
    another job shows as a low minimum beside the median."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import budget
    finally:
        sys.path.remove(str(BENCHMARKS))
    log = [
        {"step": 50, "loss": 3.0, "train_minutes": 1.0},
        {"step": 100, "loss": 2.9, "train_minutes": 2.0},  # 50 steps a minute
        {"step": 100, "eval_ndcg@10": 0.1, "train_minutes": 2.5},
        {"step": 150, "loss": 2.8, "train_minutes": 4.0},  # holds the evaluation: left out
        {"step": 200, "loss": 2.7, "train_minutes": 5.0},
        {"step": 250, "loss": 2.6, "train_minutes": 7.0},  # half speed
    ]
    pace = budget.training_pace(log)
    assert pace == {"steps_per_s_median": round(50 / 60, 2), "steps_per_s_min": round(25 / 60, 2)}
    sys.modules.pop("budget", None)


def test_every_result_file_names_the_command_commit_and_machine_that_wrote_it(tmp_path, monkeypatch):
    """One results writer for every script (issue 34): a report written through it ends with what wrote it,
    and the figures carry the same under "written_by", whatever the script put in them itself."""
    import json

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import machine

    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "baselines.py"), "--data", "d", "--seed", "3"])
    machine.write_results(tmp_path / "r", "# A report\n\n| a | b |\n", {"figure": 1.5})
    report = (tmp_path / "r.md").read_text()
    written = json.loads((tmp_path / "r.json").read_text())
    assert (
        written["figure"] == 1.5
        and written["written_by"]["command"] == "python benchmarks/baselines.py --data d --seed 3"
    )
    assert f"Written by `python benchmarks/baselines.py --data d --seed 3` at commit {machine.git_commit()}" in report
    assert written["written_by"]["commit"] == machine.git_commit() != "unknown"
    machine.write_atomic(tmp_path / "plain.json", "{}")  # data files stay as written
    assert (tmp_path / "plain.json").read_text() == "{}"
    sys.modules.pop("machine", None)


def test_subsample_keeps_a_seeded_share_of_users_and_links_the_item_files(synth_dir, tmp_path, monkeypatch):
    from genrec.data import load_dataset_dir

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from subsample import subsample

    source = load_dataset_dir(synth_dir)
    users = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    kept = [subsample(synth_dir, out, share, seed) for out, share, seed in zip(users, (0.5, 0.5, 0.5), (0, 0, 1))]
    assert kept[0] == len(source.sequences) // 2
    a, b, c = (load_dataset_dir(out) for out in users)
    assert set(a.sequences) == set(b.sequences) != set(c.sequences)  # the seed decides, and only the seed
    assert set(a.sequences) < set(source.sequences)
    assert all(a.sequences[u] == source.sequences[u] for u in a.sequences)
    assert a.item_ids == source.item_ids and (users[0] / "items.jsonl").is_symlink()
