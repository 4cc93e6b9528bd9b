"""Prometheus metrics: request counts and latencies by route template, plus queue state and
fit durations read from the database at scrape time (workers may run on other machines, so
the database is the only place that knows them all)."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.ops import repository

logger = logging.getLogger("mixedfit.metrics")

JOB_STATES = ("queued", "running", "succeeded", "failed")
FIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class DatabaseCollector:
    """Jobs by state and fit durations, queried when Prometheus scrapes."""

    def __init__(self, factory: Callable[[], sessionmaker[Session] | None]) -> None:
        self._factory = factory

    def describe(self) -> Iterable[Metric]:
        return [self._jobs({}), self._fits([])]

    def collect(self) -> Iterable[Metric]:
        factory = self._factory()
        if factory is None:
            return []
        from service.jobs.repository import count_by_status

        try:
            with factory() as session:
                counts = count_by_status(session)
                durations = repository.fit_durations(session)
                session.rollback()
        except Exception:  # a scrape must not fail because the database is down
            logger.warning("metrics: database unavailable", exc_info=True)
            return []
        return [self._jobs(dict(counts)), self._fits(durations)]

    @staticmethod
    def _jobs(counts: dict[str, int]) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily("mixedfit_jobs", "Jobs in the queue by state",
                                  labels=["state"])
        for state in sorted(set(JOB_STATES) | set(counts)):
            gauge.add_metric([state], float(counts.get(state, 0)))
        return gauge

    @staticmethod
    def _fits(durations: list[float]) -> HistogramMetricFamily:
        ordered = sorted(durations)
        buckets = [(str(bound), float(bisect.bisect_right(ordered, bound)))
                   for bound in FIT_BUCKETS]
        buckets.append(("+Inf", float(len(ordered))))
        return HistogramMetricFamily(
            "mixedfit_fit_duration_seconds",
            "Wall time of finished fits (most recent 10000), from the database",
            buckets=buckets, sum_value=float(sum(ordered)))


# the (method, route, status) whose series are kept at hand
MAX_KEPT_SERIES = 1024


class Metrics:
    """One application's metrics, in a registry of its own (several apps may share a process)."""

    def __init__(self, factory: Callable[[], sessionmaker[Session] | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mixedfit_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("mixedfit_http_request_duration_seconds",
                                 "HTTP request latency", ["method", "route"],
                                 registry=self.registry)
        self.registry.register(DatabaseCollector(factory))
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            # prometheus_client's labels() takes a lock and builds a tuple on every call:
            # the two series of a (method, route, status) are looked up once; bounded, as
            # a client may send any method
            series = (self.requests.labels(method, route, str(status)),
                      self.latency.labels(method, route))
            if len(self._series) < MAX_KEPT_SERIES:
                self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)


class MetricsMiddleware:
    """Counts every HTTP request under its route template (never the raw path: ids would
    make the label set grow without bound)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status,
                                 time.perf_counter() - start)
