"""Request counts and latency histograms in the Prometheus text exposition format (``GET /metrics``)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

# seconds; a 2-core CPU answers one request in tens of milliseconds, a loaded one in about a second
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus histograms report them."""

    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one: above every bucket (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {self.sum:.6f}", f"{name}_count{braces} {self.count}"]
        return out


class ServiceMetrics:
    """What ``/metrics`` reports: requests by route and status, latency by route, batch sizes."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP genrec_requests_total HTTP requests answered, by route and status code.",
                "# TYPE genrec_requests_total counter",
            ]
            lines += [
                f'genrec_requests_total{{route="{r}",status="{s}"}} {n}' for (r, s), n in sorted(self.requests.items())
            ]
            lines += [
                "# HELP genrec_request_seconds Time from request to response, by route.",
                "# TYPE genrec_request_seconds histogram",
            ]
            for route, hist in sorted(self.latency.items()):
                lines += hist.lines("genrec_request_seconds", f'route="{route}"')
            lines += [
                "# HELP genrec_batch_size Histories ranked together in one model call.",
                "# TYPE genrec_batch_size histogram",
                *self.batch_size.lines("genrec_batch_size"),
            ]
        return "\n".join(lines) + "\n"
