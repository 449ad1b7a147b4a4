"""A small in-memory HTTP server speaking the slice of the Hugging Face Hub API that
``huggingface_hub`` (create_repo, upload_folder, hf_hub_download, snapshot_download),
``transformers``/``peft`` ``from_pretrained`` and ``datasets`` (push_to_hub, load_dataset) call.

Written for genrec's offline tests: the real clients talk to it over real HTTP, so a test fails when
the client would fail against the Hub. Not a full Hub: no auth scopes, no xet, no PRs, no tags.

Routes (``{t}`` = models|datasets|spaces, ``{p}`` = "", "datasets/" or "spaces/", ``{repo}`` = namespace/name):
  POST /api/repos/create                      409 + JSON {"url"} when the repo exists
  POST /api/validate-yaml                     README metadata check (accepts all)
  GET  /api/whoami-v2
  GET  /api/{t}/{repo}[/revision/{rev}]       id, sha, siblings (+ sizes/lfs with ?blobs=1)
  GET  /api/{t}/{repo}/tree/{rev}[/{path}]    ?recursive=; 404 EntryNotFound for a missing folder
  POST /api/{t}/{repo}/paths-info/{rev}       form or JSON "paths"
  GET  /api/{t}/{repo}/refs
  POST /api/{t}/{repo}/branch/{branch}        409 when it exists
  POST /api/{t}/{repo}/preupload/{rev}        regular vs lfs, remote oid of unchanged files
  POST /api/{t}/{repo}/commit/{rev}           NDJSON header/file/lfsFile/deletedFile/deletedFolder
  PUT  /api/{t}/{repo}/settings               JSON {"visibility": "private" | "public"}
  POST /{p}{repo}.git/info/lfs/objects/batch  basic transfer, no actions for stored objects
  PUT  /_lfs/{sha256}   POST /_lfs/{sha256}/verify
  HEAD|GET /{p}{repo}/resolve/{rev}/{path}    X-Repo-Commit, ETag, X-Linked-Etag/-Size, Range

Test hooks: ``bad_tokens`` (answered 401 everywhere, like the Hub), ``fail_next(route, status)``
(the next N calls of a route fail after their body is read), ``requests`` (a log of
(method, route, path)).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

USER = "genrec-tester"
# File patterns stored through LFS, as in the Hub's default .gitattributes (abridged).
LFS_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.npy",
    "*.npz",
    "*.arrow",
    "*.parquet",
    "*.h5",
    "*.onnx",
    "*.model",
    "*.zip",
    "*.gz",
    "*.tar",
)
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub stores any file of 10 MB or more via LFS
DROP = 0  # fail_next status that closes the connection without answering
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def git_oid(self) -> str:
        raw = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid

    def entry(self, path: str) -> dict:
        out = {"type": "file", "oid": self.git_oid, "size": len(self.data), "path": path}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return out


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    files: dict[str, Blob]
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))


@dataclass
class Repo:
    type: str  # "model" | "dataset"
    id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit:
        sha = self.branches.get(rev, rev)
        if sha not in self.commits:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return self.commits[sha]


class HubServer:
    """Start with ``start()``; ``url`` is the endpoint to give to HF_ENDPOINT."""

    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.bad_tokens: set[str] = set()
        self.requests: list[tuple[str, str, str]] = []
        self._faults: dict[str, list[int]] = {}
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle and test hooks ----------------------------------------------------------------
    def start(self) -> "HubServer":
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, route: str, status: int = 500, times: int = 1) -> None:
        """Make the next ``times`` calls of ``route`` (e.g. "commit", "lfs-upload") answer ``status``
        (``DROP``: close the connection without an answer, like a network failure mid-request)."""
        with self._lock:
            self._faults.setdefault(route, []).extend([status] * times)

    def calls(self, route: str) -> int:
        return sum(1 for _, r, _ in self.requests if r == route)

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        try:
            return self.repos[(repo_type, repo_id)]
        except KeyError:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound") from None

    # -- storage operations ----------------------------------------------------------------------
    def _new_sha(self, *parts) -> str:
        return hashlib.sha1(json.dumps([next(self._counter), *parts]).encode()).hexdigest()

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        first = Commit(
            self._new_sha(repo_id), None, "initial commit", {".gitattributes": Blob(GITATTRIBUTES, lfs=False)}
        )
        repo.commits[first.sha] = first
        repo.branches["main"] = first.sha
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def commit(self, repo: Repo, branch: str, lines: list[dict]) -> Commit:
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        head = repo.commits[repo.branches[branch]]
        header = next((ln["value"] for ln in lines if ln["key"] == "header"), None)
        if header is None or not header.get("summary"):
            raise HubError(400, "commit header with a summary is required")
        if header.get("parentCommit") not in (None, head.sha):
            raise HubError(412, "parentCommit is not the head of the branch")
        files = dict(head.files)
        for ln in lines:
            key, value = ln["key"], ln["value"]
            if key == "file":
                files[value["path"]] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                files[value["path"]] = Blob(self.lfs_objects[value["oid"]], lfs=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(prefix)}
            elif key != "header":
                raise HubError(400, f"unknown commit operation {key!r}")
        new = Commit(self._new_sha(repo.id, head.sha, sorted(files)), head.sha, header["summary"], files)
        repo.commits[new.sha] = new
        repo.branches[branch] = new.sha
        return new


def _tree_entries(commit: Commit, path: str, recursive: bool) -> list[dict]:
    """Files and folders under ``path`` (the Hub lists folders with a size of 0)."""
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    if prefix and not any(p.startswith(prefix) for p in commit.files):
        raise HubError(404, f"{path} does not exist on this revision", "EntryNotFound")
    files, folders = [], set()
    for p, blob in sorted(commit.files.items()):
        if not p.startswith(prefix):
            continue
        rest = p[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            if depth == 1 or recursive:
                folders.add(prefix + "/".join(rest[:depth]))
        if len(rest) == 1 or recursive:
            files.append(blob.entry(p))
    dirs = [
        {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
        for d in sorted(folders)
    ]
    return dirs + files


def _path_entry(commit: Commit, path: str) -> dict | None:
    if path in commit.files:
        return commit.files[path].entry(path)
    if any(p.startswith(path.rstrip("/") + "/") for p in commit.files):
        return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    hub: HubServer

    def log_message(self, format, *args):  # quiet: the request log is in hub.requests
        pass

    def _read_body(self) -> bytes:
        """The whole body, always: an unread body would corrupt the next request on the connection."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body=b"", headers: dict | None = None, content_type="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self):
        body = self._read_body()
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        segments = [unquote(s) for s in split.path.strip("/").split("/")]
        route = "unknown"
        try:
            route, handler, args = self._route(segments)
            with self.hub._lock:
                self.hub.requests.append((self.command, route, split.path))
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if token in self.hub.bad_tokens:
                    raise HubError(401, "Invalid credentials in Authorization header")
                faults = self.hub._faults.get(route)
                if faults:
                    status = faults.pop(0)
                    if status == DROP:  # the connection breaks before any answer
                        self.close_connection = True
                        return
                    raise HubError(status, f"injected failure of {route}")
                handler(body, *args)
        except HubError as e:
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._send(e.status, e.body or {"error": e.message}, headers)
        except Exception as e:  # a bug in this server: say so loudly in the test output
            print(f"hub_server: {self.command} {self.path} ({route}) crashed: {e!r}", file=sys.stderr)
            self._send(500, {"error": f"test hub server crashed: {e!r}"})

    def _route(self, s: list[str]):
        m = self.command
        if s[:1] == ["_lfs"] and len(s) >= 2:
            if m == "PUT":
                return "lfs-upload", self._lfs_put, (s[1],)
            return "lfs-verify", self._lfs_verify, (s[1],)
        if s[:1] == ["api"]:
            if s[1:3] == ["repos", "create"]:
                return "create-repo", self._create_repo, ()
            if s[1:2] == ["validate-yaml"]:
                return "validate-yaml", lambda body: self._send(200, {"errors": [], "warnings": []}), ()
            if s[1:2] == ["whoami-v2"]:
                return "whoami", lambda body: self._send(200, {"type": "user", "name": USER}), ()
            if len(s) >= 5 and s[1] in ("models", "datasets", "spaces"):
                key = (s[1][:-1], f"{s[2]}/{s[3]}")
                action, rest = (s[4], s[5:]) if len(s) > 4 else ("info", [])
                if action == "revision" and m == "GET":
                    return "info", self._info, (key, rest[0] if rest else "main")
                routes = {
                    ("GET", "tree"): ("tree", self._tree),
                    ("POST", "paths-info"): ("paths-info", self._paths_info),
                    ("GET", "refs"): ("refs", self._refs),
                    ("POST", "branch"): ("branch", self._branch),
                    ("POST", "preupload"): ("preupload", self._preupload),
                    ("POST", "commit"): ("commit", self._commit),
                    ("PUT", "settings"): ("settings", self._settings),
                }
                if (m, action) in routes:
                    name, fn = routes[(m, action)]
                    return name, fn, (key, rest)
            if len(s) == 4 and s[1] in ("models", "datasets", "spaces") and m == "GET":
                return "info", self._info, ((s[1][:-1], f"{s[2]}/{s[3]}"), "main")
        prefixed = {"datasets": "dataset", "spaces": "space"}
        repo_type, rest = (prefixed[s[0]], s[1:]) if s[:1] and s[0] in prefixed else ("model", s)
        if len(rest) >= 5 and rest[2] == "resolve" and m in ("GET", "HEAD"):
            return "resolve", self._resolve, ((repo_type, f"{rest[0]}/{rest[1]}"), rest[3], "/".join(rest[4:]))
        if len(rest) == 6 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]:
            return "lfs-batch", self._lfs_batch, ((repo_type, f"{rest[0]}/{rest[1][:-4]}"),)
        raise HubError(404, f"test hub server: no route for {m} {self.path}")

    def _visible_repo(self, key) -> Repo:
        repo = self.hub.repo(*key)
        if repo.private and not self.headers.get("Authorization"):
            raise HubError(404, f"Repository {repo.id} not found", "RepoNotFound")
        return repo

    # -- handlers (called under the hub lock) ------------------------------------------------------
    def _create_repo(self, body):
        req = json.loads(body)
        repo_type = req.get("type") or "model"
        repo_id = f"{req.get('organization') or USER}/{req['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.hub.url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            raise HubError(
                409, "You already created this repo", body={"error": "You already created this repo", "url": url}
            )
        self.hub.create_repo(repo_type, repo_id, private=req.get("visibility") == "private" or bool(req.get("private")))
        self._send(200, {"url": url, "name": repo_id})

    def _info(self, body, key, rev):
        repo = self._visible_repo(key)
        commit = repo.resolve(rev)
        blobs = self.query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sib = {"rfilename": path}
            if blobs:
                sib.update(size=len(blob.data), blobId=blob.git_oid)
                if blob.lfs:
                    sib["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
            siblings.append(sib)
        self._send(
            200,
            {
                "_id": repo.id,
                "id": repo.id,
                "author": repo.id.split("/")[0],
                "sha": commit.sha,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": commit.date,
                "createdAt": commit.date,
                "siblings": siblings,
            },
        )

    def _settings(self, body, key, rest):
        repo = self._visible_repo(key)
        visibility = json.loads(body or b"{}").get("visibility")
        if visibility is not None:
            repo.private = visibility == "private"
        self._send(200, {})

    def _tree(self, body, key, rest):
        commit = self._visible_repo(key).resolve(rest[0] if rest else "main")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        self._send(200, _tree_entries(commit, "/".join(rest[1:]), recursive))

    def _paths_info(self, body, key, rest):
        commit = self._visible_repo(key).resolve(rest[0] if rest else "main")
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        self._send(200, [e for e in (_path_entry(commit, p) for p in paths) if e is not None])

    def _refs(self, body, key, rest):
        repo = self._visible_repo(key)
        self._send(
            200,
            {
                "branches": [
                    {"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha} for b, sha in repo.branches.items()
                ],
                "converts": [],
                "tags": [],
            },
        )

    def _branch(self, body, key, rest):
        repo = self._visible_repo(key)
        branch = "/".join(rest)
        if branch in repo.branches:
            raise HubError(409, f"Branch {branch} already exists")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.branches[branch] = repo.resolve(start).sha
        self._send(200, {})

    def _preupload(self, body, key, rest):
        repo = self._visible_repo(key)
        head = repo.resolve(rest[0]) if rest and rest[0] in repo.branches else None
        files = []
        for f in json.loads(body)["files"]:
            lfs = f["size"] >= LFS_MIN_SIZE or any(fnmatch.fnmatch(f["path"], p) for p in LFS_PATTERNS)
            old = head.files.get(f["path"]) if head else None
            oid = None if old is None or old.lfs != lfs else (old.sha256 if lfs else old.git_oid)
            files.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._send(200, {"files": files, "commitOid": head.sha if head else None})

    def _commit(self, body, key, rest):
        repo = self._visible_repo(key)
        lines = [json.loads(ln) for ln in body.decode().splitlines() if ln.strip()]
        commit = self.hub.commit(repo, "/".join(rest) or "main", lines)
        prefix = "" if repo.type == "model" else f"{repo.type}s/"
        self._send(
            200,
            {
                "success": True,
                "commitOid": commit.sha,
                "pullRequestUrl": None,
                "commitUrl": f"{self.hub.url}/{prefix}{repo.id}/commit/{commit.sha}",
            },
        )

    def _lfs_batch(self, body, key):
        self._visible_repo(key)
        objects = []
        for obj in json.loads(body)["objects"]:
            out = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                href = f"{self.hub.url}/_lfs/{obj['oid']}"
                out["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
            objects.append(out)
        self._send(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, body, oid):
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        self.hub.lfs_objects[oid] = body
        self._send(200, {})

    def _lfs_verify(self, body, oid):
        if oid not in self.hub.lfs_objects:
            raise HubError(404, f"LFS object {oid} not found")
        self._send(200, {})

    def _resolve(self, body, key, rev, path):
        commit = self._visible_repo(key).resolve(rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"{path} not found in {key[1]}@{rev}", "EntryNotFound")
        data, status = blob.data, 200
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{blob.etag}"', "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start_s, end_s = rng[len("bytes=") :].split(",")[0].split("-")
            if start_s == "":
                start, end = max(len(data) - int(end_s), 0), len(data) - 1
            else:
                start, end = int(start_s), min(int(end_s) if end_s else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")


class SilentServer:
    """Accepts TCP connections (the kernel completes them from the listen backlog) and never
    answers: what a hung proxy or an overloaded Hub looks like to a client."""

    def __enter__(self) -> "SilentServer":
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        host, port = self._sock.getsockname()
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()


# -- pointing the real clients at the server ----------------------------------------------------------
def hub_env(url: str, hf_home: str | os.PathLike, token: str = "hf_genrec_test_token") -> dict[str, str]:
    """Environment for a fresh process (e.g. the ``genrec`` CLI) to use the server."""
    return {
        "HF_ENDPOINT": url,
        "HF_TOKEN": token,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
    }


def point_clients_at(url: str, hf_home: Path, monkeypatch, token: str = "hf_genrec_test_token") -> None:
    """Point this process's huggingface_hub/datasets at ``url``, even if they were imported already.

    Both libraries copy HF_ENDPOINT, HF_HOME and the offline flags into module constants at import
    time, and the test session imports them (via genrec.data) long before this fixture runs, with
    HF_HUB_OFFLINE=1 from conftest. So we set the environment (for anything read lazily and for
    child processes) and patch the copied constants; monkeypatch restores all of it afterwards.
    A constant missed here sends a request to huggingface.co, which fails loudly in these offline
    tests, so a gap cannot pass silently.
    """
    for k, v in hub_env(url, hf_home, token).items():
        monkeypatch.setenv(k, v)
    from huggingface_hub import constants

    hub_cache, assets = hf_home / "hub", hf_home / "assets"
    for name, value in {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(assets),
        "HUGGINGFACE_ASSETS_CACHE": str(assets),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "HF_XET_CACHE": str(hf_home / "xet"),
    }.items():
        monkeypatch.setattr(constants, name, value)
    # The module-level functions (file_exists, model_info, ...) are bound methods of one HfApi
    # made at import time, which copied ENDPOINT into its ``endpoint``.
    from huggingface_hub import hf_api

    monkeypatch.setattr(hf_api.api, "endpoint", url)
    if "datasets" in sys.modules:
        from datasets import config

        for name, value in {
            "HF_ENDPOINT": url,
            "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False,
            "HF_DATASETS_OFFLINE": False,
            "HF_CACHE_HOME": str(hf_home),
            "HF_DATASETS_CACHE": hf_home / "datasets",
        }.items():
            monkeypatch.setattr(config, name, value)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fresh local Hub with the real clients pointed at it (caches under tmp_path/hf_home)."""
    server = HubServer().start()
    point_clients_at(server.url, tmp_path / "hf_home", monkeypatch)
    yield server
    server.stop()
