"""The Python examples of README.md and of the model cards run as written (issue 17).

README's blocks run in a fresh process from a folder holding what they name (`path/to/dataset`, a
model folder `m` whose catalogue has the items 12, 7 and 3); each card's blocks run in a fresh
process against the test Hub server the card's repository was pushed to.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.hub import push_to_hub
from genrec.modeling.factory import build_generator
from genrec.quantizer import CrossModalRQVAE, CrossModalRQVAEConfig
from genrec.tokenizer import SemanticIDTokenizer
from genrec.trainers import PROFILES

from hub_server import hub, hub_env  # noqa: F401  (hub is a fixture)

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def run_blocks(blocks: list[str], cwd: Path, env: dict | None = None) -> None:
    assert blocks
    for block in blocks:
        r = subprocess.run([sys.executable, "-c", block], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, f"{block}\n--- stderr ---\n{r.stderr[-3000:]}"


def tiny_generator_folder(path: Path) -> Path:
    """A genrec generator (random weights) with its tokenizer: items 0..39, 3-level IDs of 6 codes."""
    rng = np.random.default_rng(0)
    every = np.stack(np.unravel_index(np.arange(6**3), (6, 6, 6)), axis=1)
    codes = {m: every[rng.choice(len(every), 40, replace=False)] for m in ("text", "image")}
    tok = SemanticIDTokenizer.from_codes(list(range(40)), codes, codebook_size=6)
    build_generator(tok, seed=0, **PROFILES["tiny"]["model"]).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow
def test_readme_python_examples_run_as_written(tmp_path):
    write_synthetic_dataset(tmp_path / "path" / "to" / "dataset", SynthConfig(n_items=60, n_users=80, seed=1))
    tiny_generator_folder(tmp_path / "m")
    run_blocks(python_blocks(README.read_text(encoding="utf-8")), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["generator", "quantizer", "adapter"])
def test_model_card_python_examples_run_against_the_hub(hub, tmp_path, kind):
    folder = tmp_path / kind
    if kind == "generator":
        tiny_generator_folder(folder)
    elif kind == "quantizer":
        config = CrossModalRQVAEConfig(input_dims=(8, 6), hidden_dims=(8,), latent_dim=4, num_levels=2, codebook_size=4)
        CrossModalRQVAE(config).save_pretrained(folder)
    else:  # a LoRA adapter (with its tokenizer, as genrec train --peft lora saves it) on a published base
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        push_to_hub(tiny_generator_folder(tmp_path / "base"), "tester/base")
        model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "base")
        lora = LoraConfig(task_type="SEQ_2_SEQ_LM", r=2, lora_alpha=4, target_modules=["q", "v"])  # as genrec trains
        get_peft_model(model, lora).save_pretrained(folder)
        AutoTokenizer.from_pretrained(tmp_path / "base").save_pretrained(folder)
    info = push_to_hub(folder, f"tester/{kind}", base_repo_id="tester/base" if kind == "adapter" else None)
    card = hub.repos[("model", f"tester/{kind}")].commits[info.oid].files["README.md"].data.decode()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_blocks(python_blocks(card), elsewhere, env={**os.environ, **hub_env(hub.url, tmp_path / "hf_home_reader")})


def test_every_cli_flag_has_help_text():
    from genrec.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    missing = {
        name: [a.option_strings[-1] for a in sub._actions if a.option_strings and not a.help]
        for name, sub in commands.items()
    }
    assert not {k: v for k, v in missing.items() if v}


def test_the_wheel_builds_without_packaging_warnings_and_ships_its_data(tmp_path):
    """`pip install` must print nothing about our packaging; the evaluate metric scripts and card templates
    are loaded by path, so they must be inside the wheel."""
    import shutil
    import zipfile

    repo = README.parent
    src = tmp_path / "src"
    shutil.copytree(
        repo,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", "demo_out"
        ),
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            "-v",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ours = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if re.search(r"warn", line, re.I) and "byte-compiling is disabled" not in line
    ]  # the latter: pip's env
    assert not ours, "\n".join(ours)
    (wheel,) = (tmp_path / "dist").glob("genrec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for metric in ("hit_rate", "ndcg", "beyond_accuracy"):
        assert f"genrec/eval/metrics/{metric}/{metric}.py" in names
    assert any(n.startswith("genrec/hub_cards/") and n.endswith(".md") for n in names)
    assert {f"genrec/trainers/profile_files/{name}.yaml" for name in ("tiny", "cpu", "paper")} <= set(names)
    assert {f"genrec/trainers/profile_files/quantizer/{n}.yaml" for n in ("default", "demo", "tiny")} <= set(names)
