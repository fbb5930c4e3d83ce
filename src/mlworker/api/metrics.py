"""Prometheus metrics of the API process (``GET /metrics``).

Request counts and latencies are measured here; job counts are read from the job table at
scrape time, so they are right whichever process (pool worker, Celery worker) ran the jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mlworker.errors import MLWorkerError

JobCounts = Callable[[], dict[tuple[str, str], int]]


class _JobsCollector(Collector):
    def __init__(self, counts: JobCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("mlworker_database_up", "Whether the metadata database answers")
        try:
            counts = self._counts()
        except (MLWorkerError, AttributeError):  # database down, or services not started yet
            up.add_metric([], 0.0)
            yield up
            return
        jobs = GaugeMetricFamily(
            "mlworker_jobs", "Jobs in the store by type and status", labels=["type", "status"]
        )
        for (job_type, status), number in sorted(counts.items()):
            jobs.add_metric([job_type, status], float(number))
        up.add_metric([], 1.0)
        yield jobs
        yield up


class ApiMetrics:
    """A registry per app (so several apps in one process never collide)."""

    def __init__(self, job_counts: JobCounts) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "mlworker_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mlworker_http_request_duration_seconds",
            "HTTP request latency by method and route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.registry.register(_JobsCollector(job_counts))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """Render the text exposition format."""
        return generate_latest(self.registry)
