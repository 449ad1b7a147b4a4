"""The HTTP service (genrec serve): a real uvicorn server on a free local port, called over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from genrec.pipeline import GenRecPipeline  # noqa: E402
from genrec.serving.app import create_app  # noqa: E402

from conftest import free_port  # noqa: E402


class Service:
    """``create_app`` under a real uvicorn server in a thread."""

    def __init__(self, pipeline, **kwargs):
        self.port = free_port()
        config = uvicorn.Config(create_app(pipeline, **kwargs), host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        return self.client

    def __exit__(self, *exc):
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return GenRecPipeline.from_pretrained(tiny_pipeline)


@pytest.fixture(scope="module")
def service(tiny_pipeline):
    with Service(GenRecPipeline.from_pretrained(tiny_pipeline)) as client:
        yield client


def histories(pipe, n):
    ids = pipe.tokenizer.item_ids
    return [[ids[(7 * u + j) % len(ids)] for j in range(1 + u % 6)] for u in range(n)]


def assert_same(answer: dict, rec) -> None:
    assert [i["item_id"] for i in answer["items"]] == rec.item_ids
    assert [i["sources"] for i in answer["items"]] == rec.sources
    assert [i["score"] for i in answer["items"]] == pytest.approx(rec.scores, abs=1e-5)


def test_recommend_equals_the_pipeline_and_shows_titles(service, pipe):
    for history in histories(pipe, 5):
        r = service.post("/recommend", json={"history": history, "k": 7})
        assert r.status_code == 200, r.text
        assert_same(r.json(), pipe.recommend(history, k=7))
        first = r.json()["items"][0]
        assert first["title"] == pipe.tokenizer.catalog.describe(first["item_id"])["title"]
    r = service.post("/recommend", json={"history": histories(pipe, 1)[0], "k": 4, "modality": "image"})
    assert_same(r.json(), pipe.recommend(histories(pipe, 1)[0], k=4, modality="image"))
    r = service.post("/recommend", json={"history": [], "k": 3})  # no history: the popular items, as recommend
    assert_same(r.json(), pipe.recommend([], k=3))


def test_fifty_concurrent_requests_share_batches_and_all_succeed(service, pipe):
    hists = histories(pipe, 50)
    expected = pipe.recommend(hists, k=10, exclude_history=True)
    before = _batch_count(service)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda h: service.post("/recommend", json={"history": h}), hists))
    assert [a.status_code for a in answers] == [200] * 50
    for answer, rec in zip(answers, expected):
        assert_same(answer.json(), rec)
    assert _batch_count(service) - before < 50  # some requests were ranked together


def _batch_count(client) -> int:
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith("genrec_batch_size_count"))
    return int(line.split()[-1])


def test_batch_route_equals_single_requests(service, pipe):
    hists = histories(pipe, 4)
    r = service.post("/recommend/batch", json={"requests": [{"history": h, "k": 5} for h in hists]})
    assert r.status_code == 200
    for answer, h in zip(r.json()["results"], hists):
        assert_same(answer, pipe.recommend(h, k=5))


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b'{"history": [1, 2', 400, "body"),
        (json.dumps({"history": [0, "no-such-item"], "strict": True}), 422, "history[1]"),
        (json.dumps({"history": [0], "k": 10**9}), 422, "k"),
        (json.dumps({"history": [0], "k": 500}), 422, "k"),  # over the model's num_beams
        (json.dumps({"history": [0], "k": 0}), 422, "k"),
        (json.dumps({"history": [1.5]}), 422, "history[0]"),
        (json.dumps({"history": [0] * 1001}), 422, "history"),
        (json.dumps({"history": [0], "modality": "audio"}), 422, "modality"),
        (json.dumps({"history": [0], "surprise": 1}), 422, "surprise"),
        (json.dumps([0, 1]), 422, "body"),
        (b'{"history": [' + b"1," * (5 << 20) + b"1]}", 413, "body"),  # a 10 MB body
    ],
)
def test_bad_requests_get_a_json_error_naming_the_field_and_the_service_lives_on(service, pipe, body, status, field):
    r = service.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and r.json()["error"]
    ok = service.post("/recommend", json={"history": [pipe.tokenizer.item_ids[0]]})
    assert ok.status_code == 200


def test_unknown_ids_follow_recommends_rules(service, pipe):
    known = pipe.tokenizer.item_ids[3]
    r = service.post("/recommend", json={"history": ["nope", known], "k": 5})
    assert r.status_code == 200 and r.json()["unknown"] == ["nope"]
    assert_same(r.json(), pipe.recommend(["nope", known], k=5))


def test_items_lookup_search_health_and_metrics(service, pipe):
    catalog = pipe.tokenizer.catalog
    item = catalog.item_ids[5]
    assert service.get(f"/items/{item}").json() == json.loads(json.dumps(catalog.describe(item)))
    missing = service.get("/items/no-such-item")
    assert missing.status_code == 404 and missing.json()["field"] == "item_id"
    brand = catalog.describe(item)["brand"]
    found = service.get("/items", params={"query": brand.upper(), "limit": 5}).json()["items"]
    assert 0 < len(found) <= 5 and all(x["brand"] == brand for x in found)
    assert service.get("/items", params={"query": "x", "limit": 10**6}).status_code == 422
    health = service.get("/health").json()
    assert health["status"] == "ok" and health["catalogue_size"] == len(catalog)
    metrics = service.get("/metrics").text
    assert 'genrec_requests_total{route="/health",status="200"}' in metrics
    assert "genrec_request_seconds_bucket" in metrics and 'le="+Inf"' in metrics


def test_catalogue_edits_are_off_by_default(service):
    r = service.post("/items", json={"items": [{"item_id": "new-1", "sid_text": [0, 0, 0]}]})
    assert r.status_code == 403 and "--allow-catalogue-edits" in r.json()["error"]


def test_catalogue_edits_add_an_item_with_add_items_checks(tiny_pipeline, pipe):
    live = GenRecPipeline.from_pretrained(tiny_pipeline)
    n = len(live.tokenizer.catalog)
    taken = pipe.tokenizer.catalog.codes["text"][0].tolist()
    with Service(live, allow_catalogue_edits=True) as client:
        refused = client.post("/items", json={"items": [{"item_id": "dup", "sid_text": taken}]})
        assert refused.status_code == 422 and "already taken" in refused.json()["error"]
        assert len(live.tokenizer.catalog) == n  # nothing changed
        free = _free_id(pipe.tokenizer.catalog, "text")
        added = client.post("/items", json={"items": [{"item_id": "new-1", "title": "A new amp", "sid_text": free}]})
        assert added.status_code == 200 and added.json()["catalogue_size"] == n + 1
        assert client.get("/items/new-1").json() == {"item_id": "new-1", "title": "A new amp"}
        assert client.post("/recommend", json={"history": ["new-1"]}).status_code == 200


def _free_id(catalog, modality):
    taken = {tuple(r) for r in catalog.codes[modality].tolist()}
    size, levels = catalog.codebook_sizes[modality], catalog.levels(modality)
    return next([a, b, c] for a in range(size) for b in range(size) for c in range(size) if (a, b, c) not in taken)[
        :levels
    ]


def test_genrec_serve_drains_in_flight_requests_on_sigterm(tiny_pipeline, pipe):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genrec", "serve", "--model", str(tiny_pipeline), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline and proc.poll() is None, proc.stdout.read()
            time.sleep(0.1)
        body = {"requests": [{"history": h, "k": 10} for h in histories(pipe, 256)]}  # 8 model calls of 32
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url) as probe:
            pending = pool.submit(httpx.post, f"{url}/recommend/batch", json=body, timeout=120)
            while _batch_count(probe) == 0:  # the request is in: ranking has begun
                assert not pending.done(), pending.result().text
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            answer = pending.result()
        assert answer.status_code == 200 and len(answer.json()["results"]) == 256
        # uvicorn re-raises SIGTERM once it has drained, so the parent sees the conventional signal exit
        assert proc.wait(60) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stdout.read()
    finally:
        proc.kill()
