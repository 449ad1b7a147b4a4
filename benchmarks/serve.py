"""Latency and throughput of `genrec serve` under 1, 8 and 32 concurrent clients, beside `rank()`'s own batch
throughput on the same model and machine.

The service runs as its own process (`python -m genrec serve`, as deployed) on 127.0.0.1; the clients are
asyncio tasks in this process, each on its own keep-alive connection sending `POST /recommend` for the next
history of the dataset's test split as soon as its previous answer arrives, for `--seconds` per level. On 2
cores the clients' own CPU is part of the cost, as it would be for a co-located caller; they speak raw
HTTP/1.1 to keep it small. `rank()` is timed on the same histories with the same
settings (k 10, the history left out, the model's ranking_config with its own batch size).

    python benchmarks/serve.py --model runs/ref-model --data ../shared/data/amazon-instruments-mql4grec
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import describe, git_commit, results_path, write_results

from genrec.serving.batcher import DEFAULT_MAX_BATCH


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="pipeline folder to serve")
    p.add_argument("--data", required=True, help="dataset folder whose test histories the clients send")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=20.0, help="per client level")
    p.add_argument("--max-batch", type=int, default=None, help="the service's --max-batch (default: genrec serve's)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--out", default=None, help="result files without suffix (default: benchmarks/results/serve)")
    return p.parse_args()


def test_histories(data_dir: str, limit: int = 2000) -> list[list]:
    from genrec.data import load_dataset_dir

    data = load_dataset_dir(data_dir, quiet=True)
    test = data.splits["test"]
    return [[data.item_ids[r] for r in h] for h in test["history"][:limit]]


def rank_throughput(model: str, histories: list[list]) -> tuple[float, int]:
    """Users per second of ``recommend`` over 512 histories in one call (it batches them by the model's
    ``ranking_config.batch_size``), after a warm-up call; and that batch size."""
    from genrec.pipeline import GenRecPipeline

    pipe = GenRecPipeline.from_pretrained(model)
    pipe.recommend(histories[:32], k=10)
    users = histories[:512]
    start = time.perf_counter()
    pipe.recommend(users, k=10)
    return len(users) / (time.perf_counter() - start), pipe.ranking_config.batch_size


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to POST JSON and read the
    answer: a load generator in the spirit of wrk, so that the clients' own CPU (httpx costs about a
    millisecond per request) takes as little as it can from the service on a 2-core machine."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: str, payload) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self):
        self.writer.close()


async def drive(port: int, histories: list[list], clients: int, seconds: float) -> dict:
    latencies, errors, next_user = [], 0, iter(range(10**9))

    async def client(conn):
        nonlocal errors
        while time.perf_counter() < deadline:
            history = histories[next(next_user) % len(histories)]
            start = time.perf_counter()
            status, _ = await conn.post("/recommend", {"history": history, "k": 10})
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    conns = [await Connection("127.0.0.1", port).open() for _ in range(clients)]
    await conns[0].post("/recommend", {"history": histories[0]})  # warm-up
    begin = time.perf_counter()
    deadline = begin + seconds
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - begin
    for c in conns:
        c.close()
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / elapsed,
        **{f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)},
    }


def start_service(model: str, port: int, max_batch: int | None) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "genrec", "serve", "--model", model, "--port", str(port)]
    cmd += ["--max-batch", str(max_batch)] if max_batch else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {proc.stderr.read()}")
    proc.kill()
    raise SystemExit("the service did not answer /health within 120 s")


def report(args, rank_users_per_s: float, rank_batch: int, levels: dict) -> tuple[str, dict]:
    top = levels.get(str(max(args.clients)), {})
    ratio = top.get("requests_per_s", 0.0) / rank_users_per_s
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "commit": git_commit(),
        "machine": describe(),
        "model": args.model,
        "data": Path(args.data).name,
        "rank_users_per_s": rank_users_per_s,
        "rank_batch_size": rank_batch,
        "service_max_batch": args.max_batch or DEFAULT_MAX_BATCH,
        "clients": levels,
        f"throughput_{max(args.clients)}_clients_vs_rank": ratio,
    }
    lines = [
        "# Serving: `genrec serve` latency and throughput",
        "",
        f"Command: `{payload['command']}` (commit {payload['commit']})",
        f"Machine: {payload['machine']}",
        f"Model: `{args.model}`; histories: the test split of {payload['data']}; {args.seconds:g} s per level.",
        "",
        f"`rank()` batch throughput (512 users, batches of {rank_batch}): **{rank_users_per_s:.1f} users/s**; "
        f"the service's micro-batches: at most {args.max_batch or DEFAULT_MAX_BATCH} requests.",
        "",
        "| clients | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, m in levels.items():
        lines.append(
            f"| {n} | {m['requests_per_s']:.1f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {m['p99_ms']:.1f} | "
            f"{m['errors']} |"
        )
    lines += ["", f"{max(args.clients)} clients reach **{ratio:.0%}** of `rank()`'s batch throughput."]
    return "\n".join(lines) + "\n", payload


def main():
    args = parse_args()
    histories = test_histories(args.data)
    rank_users_per_s, rank_batch = rank_throughput(args.model, histories)
    print(f"rank(): {rank_users_per_s:.1f} users/s", flush=True)
    proc = start_service(args.model, args.port, args.max_batch)
    levels = {}
    try:
        for n in args.clients:
            levels[str(n)] = asyncio.run(drive(args.port, histories, n, args.seconds))
            print(n, "clients:", levels[str(n)], flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    text, payload = report(args, rank_users_per_s, rank_batch, levels)
    print(text)
    write_results(Path(args.out) if args.out else results_path("serve"), text, payload)


if __name__ == "__main__":
    main()
