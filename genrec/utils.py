"""Small shared helpers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from .errors import GenRecError

# Every folder genrec writes holds this JSON file ({"kind": ..., "genrec_version": ...}); only such a
# folder (of the same kind) is ever replaced without --overwrite.
ARTIFACT_MARKER = ".genrec-artifact"
ARTIFACT_KINDS = ("dataset", "quantizer", "tokenizer", "generator", "encoder-cache")


class OutputPathError(GenRecError, ValueError):
    """An output path whose replacement could destroy something the user did not ask to replace."""


def artifact_kind(path: str | os.PathLike) -> str | None:
    """The kind genrec recorded in folder ``path`` (None: not written by genrec, or unreadable)."""
    try:
        return json.loads((Path(path) / ARTIFACT_MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_output_dir(
    path: str | os.PathLike, kind: str, inputs: Sequence[str | os.PathLike | None] = (), overwrite: bool = False
) -> Path:
    """Refuse an output folder whose replacement could destroy user files; returns the path.

    Never allowed: a file, the current directory or one of its parents, an input of the command or a
    folder holding one. Replaced only when empty, written by genrec as the same ``kind``, or with
    ``overwrite``. Long jobs call this before they start, not only when they write.
    """
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; choose from {ARTIFACT_KINDS}")
    path = Path(path)
    target = path.resolve()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"output {path} is a file, not a folder; give a new folder path")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise OutputPathError(f"output {path} is the current directory or holds it; give a new folder path")
    check_outside_inputs(path, inputs)
    check_writable(path)
    if overwrite or not path.is_dir() or not any(path.iterdir()):
        return path
    found = artifact_kind(path)
    if found == kind:
        return path
    what = f"a genrec {found} folder" if found else "a folder genrec did not write"
    raise OutputPathError(
        f"output {path} exists and is {what}, not a {kind} folder; choose another output folder "
        "or pass --overwrite (overwrite=True) to replace it"
    )


def check_outside_inputs(
    path: str | os.PathLike, inputs: Sequence[str | os.PathLike | None], what: str = "output"
) -> None:
    """Refuse an output folder that is an input of the command, holds one, or lies inside one (it would
    replace the input, or write into it: a model's own quantizer, a dataset's folder)."""
    target = Path(path).resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if target == source or target in source.parents:
            raise OutputPathError(f"{what} {path} would replace the input {item}; give another {what} folder")
        if source in target.parents:
            raise OutputPathError(f"{what} {path} lies inside the input {item}; give a folder outside it")


def check_output_file(
    path: str | os.PathLike,
    what: str,
    replaceable: Callable[[Path], bool],
    inputs: Sequence[str | os.PathLike | None] = (),
) -> Path:
    """Refuse an output file path whose writing could destroy something; returns the path.

    Never allowed: a folder (the current directory included), an input of the command, or an existing file
    that ``replaceable`` does not recognise as an earlier output of this kind (a ``what`` file). Commands
    call this before their work starts, so a bad path fails in a second, not after an hour.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder; give the path of a {what} file")
    for item in inputs:
        if item is not None and path.resolve() == Path(item).resolve():
            raise OutputPathError(f"output {path} is the input {item}; give another output file")
    if path.exists() and not replaceable(path):
        raise OutputPathError(
            f"output {path} exists and is not a {what} file genrec wrote; choose another path or remove that file first"
        )
    check_writable(path)
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Refuse an output whose folder cannot be written (read-only file system or permissions) before the work,
    not after an hour: a file is created and removed in the nearest existing folder on its way."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OutputPathError(f"output {path}: cannot write in {folder} ({os_error_message(e)})") from None


_HELD_LOCKS: set[Path] = set()


def _write_or_remove(path: Path, fh, text: str) -> None:
    try:
        fh.write(text)
        fh.flush()
    except OSError:  # a full disk: no empty lock left behind to refuse the next run
        path.unlink(missing_ok=True)
        raise


def atomic_write_file(path: str | os.PathLike, write: Callable) -> Path:
    """``write(fh)`` into a binary temp file beside ``path``, then rename it onto ``path``: a full disk or a kill
    leaves the old file (or none) and no temp file, never half a file. An OSError names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    finally:
        tmp.unlink(missing_ok=True)
    return path


def os_error_message(e: OSError) -> str:
    """One line for an OS error: what, where, and what to do for the usual causes (full disk, read-only)."""
    import errno

    what = e.strerror or str(e) or type(e).__name__
    where = f": {e.filename}" if e.filename else ""
    hint = {
        errno.ENOSPC: "; the disk is full: free space and run it again (nothing half-written was kept)",
        errno.EROFS: "; that file system is read-only: choose a writable folder",
        errno.EACCES: "; no permission: choose a folder you may write to",
        errno.EPERM: "; no permission: choose a folder you may write to",
    }.get(e.errno, "")
    return f"{what}{where}{hint}"


def _lock_holder(lock: Path) -> str | None:
    """Who holds ``lock`` ("pid N on HOST since T"), or None when it is stale (its process on this host is gone)."""
    import socket

    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"an unreadable lock {lock}"
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return f"pid {pid} on {host} since {info.get('started', '?')}"


@contextlib.contextmanager
def quiet_logger(name: str, message: str | None = None):
    """Logger ``name``'s warnings off for a block (where genrec says the same in its own words), or only
    those containing ``message`` when it is given."""
    import logging

    log = logging.getLogger(name)
    level = log.level
    drop = None if message is None else (lambda record: message not in record.getMessage())
    if drop is None:
        log.setLevel(logging.ERROR)
    else:
        log.addFilter(drop)
    try:
        yield
    finally:
        log.setLevel(level)
        if drop is not None:
            log.removeFilter(drop)


@contextlib.contextmanager
def no_hf_progress_bars():
    """transformers' own progress bars ("Loading weights", "Writing model shards") off for a block: a small
    model loads and saves in a blink, and a bar per checkpoint makes a quiet run look busy. Trainer's
    training bar is its own (``disable_tqdm``) and stays."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def output_lock(*paths: str | os.PathLike | None):
    """Hold ``.<name>.lock`` beside each output path for the block, so a second run writing the same output
    or checkpoints is refused at once, naming the first (two runs would interleave checkpoints and the last
    would silently win). A lock whose process is gone is taken over; the same process may re-enter. In a
    multi-process run (torchrun / accelerate set RANK) the main process holds it for all."""
    import socket
    import time

    if os.environ.get("RANK", "0") != "0":
        yield
        return
    taken = []
    try:
        for path in paths:
            if path is None or Path(path).resolve() in _HELD_LOCKS:
                continue
            key = Path(path).resolve()
            lock = key.with_name(f".{key.name}.lock")
            lock.parent.mkdir(parents=True, exist_ok=True)
            record = json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            )
            for _ in range(2):
                try:
                    with open(lock, "x", encoding="utf-8") as fh:
                        _write_or_remove(lock, fh, record)
                    break
                except FileExistsError:
                    holder = _lock_holder(lock)
                    if holder is not None:
                        raise OutputPathError(
                            f"{path} is being written by another genrec run ({holder}); wait for "
                            f"it, or choose another folder (remove {lock} if no such run exists)"
                        )
                    lock.unlink(missing_ok=True)  # stale: its process died without cleaning up
            else:
                raise OutputPathError(f"cannot take the lock {lock}; remove it if no genrec run is writing {path}")
            taken.append((key, lock))
            _HELD_LOCKS.add(key)
        yield
    finally:
        for key, lock in taken:
            _HELD_LOCKS.discard(key)
            lock.unlink(missing_ok=True)


def nonfinite_parameters(model) -> list[str]:
    """Names of ``model``'s parameters holding NaN or inf (a diverged training), in module order."""
    return [name for name, p in model.named_parameters() if not bool(p.isfinite().all())]


@contextlib.contextmanager
def atomic_output_dir(
    path: str | os.PathLike, kind: str, inputs: Sequence[str | os.PathLike | None] = (), overwrite: bool = False
):
    """Yield a temporary sibling folder that replaces ``path`` only if the block succeeds.

    Artifacts are never half-written: on error the temp folder is removed and ``path`` is untouched.
    ``path`` must pass ``check_output_dir`` and is locked (``output_lock``) while it is written; the new
    folder gets the artifact marker of ``kind``.
    """
    path = check_output_dir(path, kind, inputs, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            yield tmp
            from . import __version__

            (tmp / ARTIFACT_MARKER).write_text(
                json.dumps({"kind": kind, "genrec_version": __version__}), encoding="utf-8"
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(backup)
            tmp.rename(path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(path)


def torch_device(device: str | None, default: str = "cpu"):
    """``device`` (else ``default``) as a ``torch.device``, checked here: a name torch does not know, or a CUDA /
    MPS device this machine lacks, is one GenRecError rather than a traceback at the first tensor moved."""
    import torch

    name = str(device or default)
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise GenRecError(f"--device {name}: not a torch device (cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        raise GenRecError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); use --device cpu"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GenRecError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return dev


def set_seed(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_history_rows(histories: Sequence[Sequence[int]], n_items: int) -> None:
    """Refuse an empty history, or one holding a row outside the catalogue, before any ranking (one message for
    every ranker: none is trained on empty histories; ``GenRecPipeline.recommend`` falls back to popular items)."""
    for u, history in enumerate(histories):
        if len(history) == 0:
            raise GenRecError(
                f"histories[{u}] is empty: ranking reads at least one item (recommend() gives an "
                "empty history the popular items)"
            )
        bad = [r for r in history if not 0 <= r < n_items]
        if bad:
            raise GenRecError(f"histories[{u}]: catalogue rows {bad[:5]} are outside 0..{n_items - 1}")
