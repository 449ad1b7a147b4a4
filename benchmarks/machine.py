"""What every benchmark script beside this one shares: the machine and commit it ran on, and how it
writes its result files."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AMX tiles, Intel Xeon since Sapphire Rapids)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private: absent in some torch builds
    return bool(probe and probe())


def describe(device: str = "cpu") -> str:
    gpu = f", GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") and torch.cuda.is_available() else ""
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), torch {torch.get_num_threads()} threads{gpu}, device {device}; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def git_commit() -> str:
    """The checkout's commit (short hash, ``-dirty`` with uncommitted changes to tracked files), or "unknown"."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def provenance() -> dict:
    """What wrote a result: the command line as typed from the repository root, the commit, the machine."""
    script = Path(sys.argv[0]).resolve()
    repo = Path(__file__).resolve().parents[1]
    shown = script.relative_to(repo) if script.is_relative_to(repo) else script
    return {"command": shlex.join(["python", str(shown), *sys.argv[1:]]), "commit": git_commit(), "machine": describe()}


def results_path(name: str) -> Path:
    """``benchmarks/results/<name>``, or under ``$GENREC_BENCHMARK_RESULTS`` when set (the smoke tests point it
    at a temporary folder, so that a smoke run never touches the committed results)."""
    folder = os.environ.get("GENREC_BENCHMARK_RESULTS") or Path(__file__).resolve().parent / "results"
    return Path(folder) / name


def write_atomic(path: Path, text: str) -> None:
    """Write a result file so that a killed run never leaves a half-written one. A Markdown report ends with
    the command, commit and machine that wrote it (``provenance``), whatever script wrote it."""
    if path.suffix == ".md":
        run = provenance()
        text = (
            text.rstrip("\n")
            + f"\n\n---\nWritten by `{run['command']}` at commit {run['commit']} on {run['machine']}.\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_results(out: Path, text: str, payload, smoke: bool = False) -> None:
    """``out``.md (the report) and ``out``.json (the figures, with ``provenance`` under "written_by" when a
    mapping), each written atomically; a ``smoke`` run (cut short: its figures mean nothing) writes nothing."""
    import json

    if smoke:
        print("smoke run (--max-steps / --max-users): no result files written")
        return

    if isinstance(payload, dict):
        payload = {**payload, "written_by": provenance()}
    for suffix, content in ((".md", text), (".json", json.dumps(payload, indent=1))):
        write_atomic(out.with_name(out.name + suffix), content)  # a name may hold a dot (budget0.5)
    print(f"wrote {out}.md and .json")
