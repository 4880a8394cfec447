"""kernelgate's Prometheus metrics (served at /metrics), in a registry per app; the one module that
imports prometheus_client.

    kernelgate_executions_total{tool,status}              code run: completed, error, timeout, oom, kernel_died
    kernelgate_execution_duration_seconds{tool,status}    how long each ran
    kernelgate_sandboxes{memory_limit}                    live sandboxes (containers running), per limit
    kernelgate_pool_ready{memory_limit}                   the warm pool's ready sandboxes, per limit
    kernelgate_container_starts_total{source}             containers made: `pool` (a claim) or `cold`
    kernelgate_container_start_duration_seconds{source}   how long each took
    kernelgate_http_requests_total{method,route,status}   requests answered, by route template
    kernelgate_http_request_duration_seconds{method,route}
    kernelgate_upstream_requests_total{provider,api,outcome}   model turns asked of a provider
    kernelgate_upstream_tokens_total{provider,kind}       input and output tokens they reported
    kernelgate_output_dropped_bytes_total{kind}           output the caps dropped: `text` (characters), `display`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

Gauges = Callable[[], Mapping[str, Mapping[str, int]]]
"""At each scrape: `{"sandboxes": {limit: count}, "pool": {limit: count}}`."""


class Metrics:
    """The counters and histograms the gateway records into, and the gauges it reads at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.executions = Counter(
            "kernelgate_executions", "Code executions, by tool and how they ended", ["tool", "status"], registry=r
        )
        self.execution_seconds = Histogram(
            "kernelgate_execution_duration_seconds",
            "Seconds each execution ran",
            ["tool", "status"],
            buckets=_SLOW,
            registry=r,
        )
        self.container_starts = Counter(
            "kernelgate_container_starts",
            "Containers made: claimed from the warm pool, or started cold",
            ["source"],
            registry=r,
        )
        self.container_start_seconds = Histogram(
            "kernelgate_container_start_duration_seconds",
            "Seconds to make a container ready",
            ["source"],
            buckets=(*_FAST, 30.0),
            registry=r,
        )
        self.http_requests = Counter(
            "kernelgate_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "kernelgate_http_request_duration_seconds",
            "Seconds to answer (for a stream: to its end)",
            ["method", "route"],
            buckets=(*_FAST, 30.0, 120.0, 600.0),
            registry=r,
        )
        self.upstream_requests = Counter(
            "kernelgate_upstream_requests",
            "Model turns asked of a provider",
            ["provider", "api", "outcome"],
            registry=r,
        )
        self.upstream_tokens = Counter(
            "kernelgate_upstream_tokens", "Tokens a provider reported", ["provider", "kind"], registry=r
        )
        self.output_dropped = Counter(
            "kernelgate_output_dropped_bytes", "Output the caps dropped (text in characters)", ["kind"], registry=r
        )

    def read_gauges(self, gauges: Gauges) -> None:
        """Report the live sandboxes and the pool as `gauges` says at each scrape."""
        self.registry.register(_GaugeCollector(gauges))

    def render(self) -> bytes:
        """Prometheus' text format."""
        return generate_latest(self.registry)


class _GaugeCollector(Collector):
    def __init__(self, gauges: Gauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._gauges()
        described = (
            ("kernelgate_sandboxes", "Live sandboxes, by memory limit", "sandboxes"),
            ("kernelgate_pool_ready", "The warm pool's ready sandboxes, by memory limit", "pool"),
        )
        for name, text, key in described:
            family = GaugeMetricFamily(name, text, labels=["memory_limit"])
            for limit, count in sorted(now.get(key, {}).items()):
                family.add_metric([limit], count)
            yield family
