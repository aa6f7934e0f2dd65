"""Scrape an onvm-scaler's Prometheus endpoint the way Prometheus does (HTTP,
text format, parsed by prometheus_client's own parser)."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int, addr: str = "127.0.0.1") -> Samples:
    """(sample name, sorted labels) -> value, from a real HTTP scrape."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (addr, port), timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
