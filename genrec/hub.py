"""Publishing to the Hugging Face Hub: a model folder in one commit, and rankings as a dataset.

Both go through the real ``huggingface_hub`` / ``datasets`` clients, so ``HF_ENDPOINT``,
``HF_TOKEN`` and friends apply as usual. The local folder is only read: the model card is rendered
in memory and committed in place of any local README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from . import __version__
from .errors import GenRecError, read_json_file
from .layout import ADAPTER_CONFIG_FILE, CATALOG_FILE, METRICS_FILE, MODEL_CONFIG_FILE, QUANTIZER_DIR, TRAIN_CONFIG_FILE
from .utils import quiet_logger

logger = logging.getLogger(__name__)

# The files whose content feeds the model card (see hub_cards); all are optional.
QUANTIZER_METRICS_FILE = "quantizer_metrics.json"
CARD_FILE = "README.md"
# Kept on the Hub when a push mirrors the folder: the Hub writes it with the repository.
HUB_OWN_FILES = frozenset({".gitattributes"})
# Seconds a Hub request may wait for a connection or an answer (env GENREC_HUB_TIMEOUT overrides).
# huggingface_hub's own client waits forever, so a server that accepts and never answers would hang.
DEFAULT_HUB_TIMEOUT_S = 30.0
# How long loading a model the HF cache already holds waits for the Hub to say whether a newer revision exists.
CACHED_PROBE_TIMEOUT_S = 2.0


class HubError(GenRecError):
    """Publishing failed: network, authentication or the Hub itself. Local files are untouched."""


def _read_json(path: Path) -> dict | None:
    return read_json_file(path) if path.is_file() else None


def card_facts(model_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """The card kind (adapter | quantizer | generator) and the facts found in ``model_dir``'s files."""
    from .data.hub_dataset import is_hub_dataset_id

    model_dir = Path(model_dir)
    adapter = _read_json(model_dir / ADAPTER_CONFIG_FILE)
    config = _read_json(model_dir / MODEL_CONFIG_FILE)
    quantizer_dir = model_dir / QUANTIZER_DIR
    quantizer_metrics = _read_json(quantizer_dir / QUANTIZER_METRICS_FILE) or _read_json(
        model_dir / QUANTIZER_METRICS_FILE
    )
    if adapter is not None:
        kind = "adapter"
    elif config is not None and "quantizer" not in str(config.get("model_type", "")):
        kind = "generator"
    elif config is not None or quantizer_metrics is not None or quantizer_dir.is_dir():
        kind = "quantizer"
        config = config or _read_json(quantizer_dir / MODEL_CONFIG_FILE)
    else:
        raise GenRecError(
            f"{model_dir} holds no {MODEL_CONFIG_FILE}, {ADAPTER_CONFIG_FILE} or {QUANTIZER_DIR}/: "
            "not a genrec model folder (save a pipeline, generator, quantizer or adapter there first)"
        )
    model_config = {k: v for k, v in (config or {}).items() if not k.startswith("_") and k != "transformers_version"}
    data = str((_read_json(model_dir / TRAIN_CONFIG_FILE) or {}).get("data") or "")
    return kind, {
        # a repo id the run was given as --data, not a local folder of that shape (read before paths are cut)
        "dataset_on_hub": data if is_hub_dataset_id(data) else None,
        "metrics": _read_json(model_dir / METRICS_FILE),
        "train_config": _read_json(model_dir / TRAIN_CONFIG_FILE),
        "model_config": model_config,
        "quantizer_metrics": quantizer_metrics,
        "adapter_config": adapter,
        "has_quantizer": quantizer_dir.is_dir(),
        # two real item ids for the card's code examples (the tokenizer's catalogue)
        "example_items": ((_read_json(model_dir / CATALOG_FILE) or {}).get("item_ids") or [])[:2] or None,
    }


def _files_to_push(model_dir: Path) -> list[Path]:
    """Every file of the folder except hidden/cache entries and the card we render ourselves.

    Symbolic links are refused: following one would publish whatever it points at.
    """
    files = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        if path.is_symlink():
            raise GenRecError(
                f"{path} is a symbolic link (to {os.readlink(path)}); genrec push does not follow links. "
                "Copy the file into the folder or remove the link."
            )
        if path.is_file() and rel.as_posix() != CARD_FILE:
            files.append(path)
    return files


_LOCAL_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/])[^\n]*$")


def _portable(value: Any) -> Any:
    """``value`` with every absolute local path replaced by its last component (folder or file name)."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and _LOCAL_PATH.match(value):
        return path_tail(value) or value
    return value


def path_tail(path: str) -> str:
    """The last component of a local path, POSIX or Windows ("/a/b/c/" -> "c")."""
    return re.split(r"[\\/]", str(path).rstrip("\\/"))[-1]


def _upload_content(path: Path, replace: dict | None = None) -> str | bytes:
    """What is committed for ``path``: the file itself, or a JSON file rewritten without local paths
    (and with the top-level values of ``replace``)."""
    if path.suffix != ".json":
        return str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return str(path)
    portable = {**_portable(data), **(replace or {})} if isinstance(data, dict) else _portable(data)
    return str(path) if portable == data else (json.dumps(portable, indent=2) + "\n").encode("utf-8")


def _adapter_base(facts: dict, base_repo_id: str | None) -> dict | None:
    """The adapter_config.json values to publish: the base as a Hub id, which AutoPeftModel can fetch.
    A base recorded as a local folder needs ``base_repo_id`` (where that folder was published)."""
    base = (facts.get("adapter_config") or {}).get("base_model_name_or_path")
    if base_repo_id:
        facts["adapter_config"]["base_model_name_or_path"] = base_repo_id
        return {"base_model_name_or_path": base_repo_id}
    if base and (_LOCAL_PATH.match(str(base)) or Path(base).exists()):
        raise GenRecError(
            f"the adapter's base model is the local folder {base}, which nobody else can load: publish it first "
            "(genrec push --model BASE --repo-id NAME) and pass its repo id as --base-repo-id NAME"
        )
    return None


@contextlib.contextmanager
def hub_timeouts(seconds: float | None = None):
    """Bound every request huggingface_hub makes inside the block (connect and each read/write)."""
    from huggingface_hub.utils import get_session

    if seconds is None:
        raw = os.environ.get("GENREC_HUB_TIMEOUT", str(DEFAULT_HUB_TIMEOUT_S))
        try:
            seconds = float(raw)
        except ValueError:
            raise GenRecError(f"GENREC_HUB_TIMEOUT={raw!r}: expected a number of seconds") from None
    if not seconds > 0:
        raise GenRecError(f"Hub timeout must be a positive number of seconds, got {seconds}")
    session = get_session()
    previous = session.timeout
    session.timeout = seconds
    try:
        yield seconds
    finally:
        session.timeout = previous


def _is_transport_error(e: BaseException) -> bool:
    # httpx (hub 1.x) and httpx2 (hub 2.x) both name the base of network failures TransportError.
    return isinstance(e, (ConnectionError, TimeoutError)) or any(
        c.__name__ == "TransportError" for c in type(e).__mro__
    )


@contextlib.contextmanager
def _hub_errors(action: str, repo_id: str):
    """Turn client exceptions into one HubError that says what happened and what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    try:
        yield
    except GenRecError:
        raise
    except HFValidationError as exc:
        raise HubError(f"invalid repository id {repo_id!r}: {exc}") from exc
    except Exception as exc:
        # LFS and dataset uploads wrap the client error (RuntimeError from ...): find it in the chain.
        chain, e = [], exc
        while e is not None and e not in chain:
            chain.append(e)
            e = e.__cause__ or e.__context__
        http = next((e for e in chain if isinstance(e, HfHubHTTPError) and e.response is not None), None)
        retry = "Local files were not changed; run the same command again to retry."
        where = f"{action} {repo_id!r} on {constants.ENDPOINT}"
        if any(isinstance(e, OfflineModeIsEnabled) for e in chain):
            raise HubError(f"cannot {where}: HF_HUB_OFFLINE is set. Unset it to publish.") from exc
        if http is not None:
            status = http.response.status_code
            detail = http.response.headers.get("X-Error-Message") or str(http).strip().splitlines()[0]
            if status == 401:
                raise HubError(
                    f"cannot {where}: the Hub rejected the access token (401: {detail}). Set a valid write "
                    "token with HF_TOKEN or `hf auth login`, or pass --token. " + retry
                ) from exc
            if status == 403:
                raise HubError(
                    f"cannot {where}: the token may not write to this repository (403: {detail}). Use a token "
                    "with write access to the namespace. " + retry
                ) from exc
            raise HubError(f"cannot {where}: the Hub answered HTTP {status} ({detail}). {retry}") from exc
        if any(_is_transport_error(e) and "Timeout" in type(e).__name__ for e in chain):
            raise HubError(
                f"cannot {where}: the Hub did not answer in time ({type(exc).__name__}). The server is "
                f"unreachable or overloaded; GENREC_HUB_TIMEOUT sets the wait in seconds. {retry}"
            ) from exc
        if any(_is_transport_error(e) for e in chain):
            raise HubError(
                f"cannot {where}: the connection to the Hub failed ({type(exc).__name__}: {exc}). Check the "
                f"network connection and HF_ENDPOINT. {retry}"
            ) from exc
        raise


def _create_repo(api, repo_id: str, private: bool, hub_wait: float, repo_type: str = "model") -> str:
    """The one privacy rule of every Hub write: create the repository when missing; ``private`` also makes
    an existing public one private, before anything is uploaded. Returns the repository's full id."""
    sdk = {"space_sdk": "gradio"} if repo_type == "space" else {}
    with _hub_errors("create the repository", repo_id):
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type, **sdk).repo_id
        if private and not _is_private(api, repo_id, repo_type, hub_wait):
            api.update_repo_settings(repo_id, private=True, repo_type=repo_type)
            logger.info("made the existing %s repository %s private", repo_type, repo_id)
    return repo_id


def _is_private(api, repo_id: str, repo_type: str, hub_wait: float) -> bool:
    with _hub_errors("read the settings of", repo_id):
        return bool(api.repo_info(repo_id, repo_type=repo_type, timeout=hub_wait).private)


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    rankings_repo_id: str | None = None,
    base_repo_id: str | None = None,
):
    """Publish ``model_dir`` as the content of ``repo_id`` (at ``revision``) in ONE commit.

    The commit adds every file of the folder plus a model card rendered from its metrics/config
    files (see :mod:`genrec.hub_cards`; it replaces any local README.md in the commit only) and
    deletes the repository's files the folder no longer has, so a stale ``metrics.json`` cannot
    outlive the model it described. Absolute local paths in JSON files are reduced to their last
    component in what is pushed; symbolic links are refused. The repository is created when missing;
    ``private=True`` also makes an existing public one private. An adapter's base must be a Hub id:
    ``base_repo_id`` names it when the adapter was trained on a local folder. Every request is bounded by
    :func:`hub_timeouts`. Re-running after an interrupted upload resumes: LFS files the Hub already
    holds are not sent again.

    Returns the ``huggingface_hub.CommitInfo`` of the commit.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from .hub_cards import render_card

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise GenRecError(f"model folder {model_dir} does not exist or is not a folder")
    files = _files_to_push(model_dir)
    kind, facts = card_facts(model_dir)
    replace = {ADAPTER_CONFIG_FILE: _adapter_base(facts, base_repo_id)} if kind == "adapter" else {}
    facts = _portable(facts)
    api = HfApi(token=token)
    with hub_timeouts() as hub_wait:
        repo_id = _create_repo(api, repo_id, private, hub_wait)
        card = render_card(kind, repo_id=repo_id, rankings_repo_id=rankings_repo_id, **facts)
        operations = [
            CommitOperationAdd(rel, _upload_content(p, replace.get(rel)))
            for p, rel in ((p, p.relative_to(model_dir).as_posix()) for p in files)
        ]
        operations.append(CommitOperationAdd(CARD_FILE, str(card).encode("utf-8")))
        if kind != "quantizer":
            from .serving.hub_files import endpoint_handler_operations

            operations += endpoint_handler_operations(operations)
        message = commit_message or f"Upload genrec {kind} ({len(files)} files, genrec {__version__})"
        info, changed, stale = _commit_replacing(api, repo_id, operations, revision, message, hub_wait)
    if changed:
        logger.info("pushed %s to %s (%d stale files deleted)", model_dir, info.commit_url, stale)
    else:
        logger.info("%s already holds these files: nothing to commit (%s)", repo_id, info.commit_url)
    return info


def _commit_replacing(api, repo_id: str, operations: list, revision, message: str, hub_wait: float):
    """One commit of ``operations`` that also deletes the repository's other files (on branch ``revision``,
    created when missing). Returns (CommitInfo, whether the Hub made a commit, stale files deleted)."""
    from huggingface_hub import CommitOperationDelete

    with _hub_errors("upload to", repo_id):
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        keep = {op.path_in_repo for op in operations} | HUB_OWN_FILES
        stale = sorted(set(api.list_repo_files(repo_id, revision=revision)) - keep)
        head = api.repo_info(repo_id, revision=revision, timeout=hub_wait).sha
        with quiet_logger("huggingface_hub.hf_api"):  # its "Skipping to prevent empty commit" warning
            info = api.create_commit(
                repo_id,
                operations + [CommitOperationDelete(p) for p in stale],
                commit_message=message,
                revision=revision,
            )
    return info, info.oid != head, len(stale)


def _cached_snapshot(repo_id: str, revision: str | None, token: str | None, cache_dir=None, repo_type=None):
    """The snapshot of ``repo_id`` already in the HF cache (no request made), or None."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, token=token, local_files_only=True, cache_dir=cache_dir, repo_type=repo_type
            )
        )
    except Exception:  # noqa: BLE001  (nothing cached: the client raises one of several errors)
        return None


def fetch_from_hub(
    repo_id: str,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    repo_type: str | None = None,
) -> Path:
    """The local snapshot of Hub repo ``repo_id`` (downloaded once into the HF cache, or ``cache_dir``;
    ``local_files_only``: the cached snapshot or an error, no request).

    The revision is resolved with one bounded request (:func:`hub_timeouts`; at most
    ``CACHED_PROBE_TIMEOUT_S`` when a snapshot is already cached). When the Hub cannot be reached, does not
    answer in time or HF_HUB_OFFLINE is set, the cached snapshot is used; without one, that is one error.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import OfflineModeIsEnabled

    cached = _cached_snapshot(repo_id, revision, token, cache_dir, repo_type)
    if local_files_only:
        if cached is None:
            raise GenRecError(f"cannot load {repo_id!r}: local_files_only is set and the HF cache holds no snapshot")
        return cached
    try:
        with hub_timeouts() as seconds:
            try:  # a bounded probe: snapshot_download's own lookup of the revision waits forever
                HfApi(token=token).repo_info(
                    repo_id,
                    revision=revision,
                    repo_type=repo_type,
                    timeout=min(seconds, CACHED_PROBE_TIMEOUT_S) if cached else seconds,
                )
            except Exception as e:  # noqa: BLE001
                if not (_is_transport_error(e) or isinstance(e, OfflineModeIsEnabled)):
                    raise
                why = (
                    "HF_HUB_OFFLINE is set"
                    if isinstance(e, OfflineModeIsEnabled)
                    else f"the Hub did not answer ({type(e).__name__})"
                )
                if cached is None:
                    raise GenRecError(
                        f"cannot fetch {repo_id!r}: {why}, and the HF cache holds no snapshot of it; "
                        "load it once with the Hub reachable"
                    ) from None
                logger.warning("%s; using the cached snapshot of %s", why, repo_id)
                return cached
            return Path(
                snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir, repo_type=repo_type)
            )
    except GenRecError:
        raise
    except Exception as e:  # noqa: BLE001  (network, auth, missing repo: all user-facing)
        raise GenRecError(f"cannot fetch {repo_id!r} from the Hub: {e}") from e
