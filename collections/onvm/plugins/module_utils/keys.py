# SPDX-License-Identifier: BSD-3-Clause
"""The Redis layout of onvm: every key the global view, the scale queues and
the scalers use, named here and only here (global_view.py and scale_queue.py
read and write them; nothing else builds a key).

The global view (global_view.py; one writer per host: its scaler):
  onvm:alive:<host>              heartbeat, expires after the heartbeat TTL (3 s)
  onvm:host:<host>               hash: cpus, free_cores, updated_ms (expires with it)
  onvm:inst:<host>               hash: instance id -> JSON of service, state, rates, load
  onvm:svc:<service>             sorted set of "<host>/<instance>", score = last seen ms
  onvm:totals:<host>             JSON: per-service and per-chain counters over its manager's life
  onvm:left:<host>               set by a host that stops cleanly (undeploy), for a while
  onvm:limits:<host>             hash: service -> JSON [min, max] the host's inventory declares
                                 (expires with the heartbeat)
Coordination between the scalers (global_view.py):
  onvm:cooldown:<service>        SET NX PX: the one scaler acting on <service> this cooldown
  onvm:below:<service>:<lost>    SET NX PX: the one scaler saying <service> fell under its
                                 minimum when hosts <lost> (comma-separated) were lost
The scale queues (scale_queue.py):
  onvm:scaleq:<host>             stream of requests for <host>, consumer group "onvm-scaler"
  onvm:req:<id>                  hash: state, host, entry, attempt, detail, updated_ms
  onvm:req:<id>:begun            SET NX by the first begin() of request <id>
  onvm:req:<id>:move:<attempt>   lock of the one mover of (<id>, <attempt>)
  onvm:events                    stream of scale events, ~1000 newest kept
"""

from __future__ import annotations

PREFIX = "onvm"
GROUP = "onvm-scaler"  # the scale queues' consumer group


def _k(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


def alive(host: str) -> str:
    return _k("alive", host)


def host(host: str) -> str:
    return _k("host", host)


def instances(host: str) -> str:
    return _k("inst", host)


def service(service: str) -> str:
    return _k("svc", service)


def totals(host: str) -> str:
    return _k("totals", host)


def left(host: str) -> str:
    return _k("left", host)


def limits(host: str) -> str:
    return _k("limits", host)


def cooldown(service: str) -> str:
    return _k("cooldown", service)


def below(service: str, lost: str) -> str:
    return _k("below", service, lost)


def stream(host: str) -> str:
    return _k("scaleq", host)


def request(req_id: str) -> str:
    return _k("req", req_id)


def request_begun(req_id: str) -> str:
    return _k("req", req_id, "begun")


def request_move(req_id: str, attempt: int) -> str:
    return _k("req", req_id, "move", str(attempt))


EVENTS = _k("events")
ALIVE_PREFIX = alive("")  # a SCAN of this finds the live hosts
