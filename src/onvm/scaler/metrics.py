"""This host's data plane in the Prometheus text format, served by its
onvm-scaler (``--metrics [ADDR:]PORT``).  Every scrape reads the newest
stats snapshot the agent took (no extra read of the stats area, no call to
the manager) and the scale events this daemon emitted.

Metrics (labels: host; ports add port and device; instances service and
nf, the instance id -- not "instance", Prometheus' own target label; services
service; chains chain):
  onvm_up                                         1 while the manager answers
  onvm_port_{received,transmitted}_packets_total
  onvm_port_{transmit,steer,nsh}_dropped_packets_total, onvm_port_unmatched_packets_total,
  onvm_port_rx_no_mbuf_total
  onvm_instance_{received,transmitted,processed}_packets_total
  onvm_instance_dropped_packets_total             dropped by the NF's verdict
  onvm_instance_ring_dropped_packets_total        lost to a full rx ring
  onvm_instance_busy_ratio                        busy share over the agent's rate window
  onvm_instance_flows, onvm_instance_rx_ring_packets
  onvm_service_{received,transmitted,processed,dropped,ring_dropped}_packets_total
                                                  over every instance the host's manager
                                                  has had: never go back when instances go
  onvm_service_instances                          live local instances
  onvm_chain_{received,transmitted,remote}_packets_total
                                                  into the chain here, out of its ports,
                                                  on to other hosts (across its versions)
  onvm_pool_free_mbufs, onvm_pool_size_mbufs, onvm_flows_active
  onvm_scale_events_total{kind,service}           scale-out-requested, scale-out, scale-in, ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ansible_collections.onvm.nfv.plugins.module_utils.listen import parse_listen

from . import events

__all__ = ["OnvmCollector", "parse_listen", "serve"]

Latest = Callable[[], tuple[dict[str, Any] | None, list[dict[str, Any]]]]

PORT_COUNTERS = (
    ("rx", "onvm_port_received_packets", "Packets received on the port."),
    ("tx", "onvm_port_transmitted_packets", "Packets sent out of the port."),
    ("tx_drop", "onvm_port_transmit_dropped_packets", "Packets the port could not send."),
    (
        "steer_drop",
        "onvm_port_steer_dropped_packets",
        "Packets no instance could take.",
    ),
    (
        "nsh_drop",
        "onvm_port_nsh_dropped_packets",
        "Fabric packets with a bad NSH header.",
    ),
    ("no_chain", "onvm_port_unmatched_packets", "Packets that matched no chain."),
    ("rx_nombuf", "onvm_port_rx_no_mbuf", "Receive attempts that found no free mbuf."),
)
INSTANCE_COUNTERS = (
    ("rx", "onvm_instance_received_packets", "Packets handed to the instance."),
    ("tx", "onvm_instance_transmitted_packets", "Packets the instance passed on."),
    ("processed", "onvm_instance_processed_packets", "Packets the instance has handled."),
    ("dropped", "onvm_instance_dropped_packets", "Packets the instance dropped by its verdict."),
    (
        "rx_drop",
        "onvm_instance_ring_dropped_packets",
        "Packets lost to a full rx ring.",
    ),
)


SERVICE_COUNTERS = (
    ("rx", "onvm_service_received_packets", "Packets handed to the service's instances here, gone ones too."),
    ("tx", "onvm_service_transmitted_packets", "Packets the service's instances here passed on."),
    ("processed", "onvm_service_processed_packets", "Packets the service's instances here handled."),
    ("dropped", "onvm_service_dropped_packets", "Packets the service's instances here dropped by verdict."),
    ("rx_drop", "onvm_service_ring_dropped_packets", "Packets lost to the service's full rx rings here."),
)
CHAIN_COUNTERS = (
    ("rx", "onvm_chain_received_packets", "Packets that entered the chain on this host."),
    ("tx", "onvm_chain_transmitted_packets", "Packets the chain handed to a port of this host."),
    ("remote", "onvm_chain_remote_packets", "Packets the chain sent on to another host."),
)


INSTANCE_GAUGES = (
    ("flows", "onvm_instance_flows", "Flows pinned to the instance."),
    ("rx_ring_count", "onvm_instance_rx_ring_packets", "Packets waiting in the instance's rx ring."),
)
# (the view's "load"; the metric keeps its name, dashboards use it)
BUSY = (("load", "onvm_instance_busy_ratio", "Busy share of the instance over the last rate window."),)
SERVICE_GAUGES = (("instances", "onvm_service_instances", "Live instances of the service here."),)
HOST_GAUGES = (
    ("avail", "onvm_pool_free_mbufs", "Free mbufs in the packet pool."),
    ("size", "onvm_pool_size_mbufs", "Mbufs in the packet pool."),
    ("flows_active", "onvm_flows_active", "Flows in the manager's flow table."),
)

Rows = list[tuple[list[str], dict[str, Any]]]  # (label values, the record the values come from)


def families(
    make: type[CounterMetricFamily] | type[GaugeMetricFamily],
    specs: tuple[tuple[str, str, str], ...],
    labels: list[str],
    rows: Rows,
) -> Iterator[Metric]:
    """One metric family per (key, name, doc) of ``specs``, a sample per row."""
    for key, name, doc in specs:
        family = make(name, doc, labels=labels)
        for values, record in rows:
            family.add_metric(values, float(record[key]))
        yield family


class OnvmCollector(Collector):
    def __init__(self, host: str, latest: Latest) -> None:
        self.host = host
        self.latest = latest

    def collect(self) -> Iterator[Metric]:
        snap, insts = self.latest()
        h = self.host
        up = GaugeMetricFamily("onvm_up", "1 while this host's manager answers.", labels=["host"])
        up.add_metric([h], 0.0 if snap is None else 1.0)
        yield up
        yield from self._events()
        if snap is None:
            return
        ports: Rows = [([h, str(i), p["name"]], p) for i, p in enumerate(snap["ports"])]
        yield from families(CounterMetricFamily, PORT_COUNTERS, ["host", "port", "device"], ports)
        local = [n for n in snap["nfs"] if not n.get("remote") and n["state"] in ("running", "draining")]
        labels = ["host", "service", "nf"]
        nfs: Rows = [([h, n["service"], str(n["instance"])], n) for n in local]
        yield from families(CounterMetricFamily, INSTANCE_COUNTERS, labels, nfs)
        yield from families(GaugeMetricFamily, INSTANCE_GAUGES, labels, nfs)
        busy: Rows = [([h, i["service"], str(i["instance"])], i) for i in insts]
        yield from families(GaugeMetricFamily, BUSY, labels, busy)
        services: Rows = [([h, t["service"]], t) for t in snap["services"]]
        yield from families(CounterMetricFamily, SERVICE_COUNTERS, ["host", "service"], services)
        yield from families(GaugeMetricFamily, SERVICE_GAUGES, ["host", "service"], services)
        chains: Rows = [([h, c["chain"]], c) for c in snap["chains"]]
        yield from families(CounterMetricFamily, CHAIN_COUNTERS, ["host", "chain"], chains)
        host: Rows = [([h], {**snap["pool"], "flows_active": snap["flows_active"]})]
        yield from families(GaugeMetricFamily, HOST_GAUGES, ["host"], host)

    def _events(self) -> Iterator[Metric]:
        c = CounterMetricFamily(
            "onvm_scale_events",
            "Scale events this host's scaler emitted.",
            labels=["host", "service", "kind"],
        )
        for (kind, service), n in sorted(events.counts().items()):
            c.add_metric([self.host, service, kind], float(n))
        yield c


def serve(host: str, latest: Latest, addr: str, port: int) -> Any:
    """Serve /metrics on addr:port in a daemon thread; returns the server."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OnvmCollector(host, latest))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
