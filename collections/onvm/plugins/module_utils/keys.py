# SPDX-License-Identifier: BSD-3-Clause
"""The Redis layout of onvm: every key the global view, the scale queues and
the scalers use, named here and only here (global_view.py and scale_queue.py
read and write them; nothing else builds a key).

The global view (global_view.py; one writer per host: its scaler).  Every
read an agent makes is as long as what its decision needs, never as long as
the cluster: no SCAN, no key per host read by every host.
  onvm:hosts                     the registry: sorted set of hosts, score = last heartbeat ms
                                 (live: within the heartbeat TTL, 3 s; dropped after 10 min
                                 of silence, or at once by a clean leave)
  onvm:members                   stream of membership changes, ~10,000 newest kept: a host
                                 joined or changed its services (fields host, services) or
                                 left cleanly (host, left); each agent reads it from where it
                                 was, so it knows what every host ran without reading them
  onvm:services                  hash: host -> the services it runs (space-separated), written
                                 when it joins: what an agent that starts reads, once
  onvm:host:<host>               hash: cpus, free_cores, updated_ms, services, totals (JSON:
                                 per-service and per-chain counters over its manager's life);
                                 expires with the heartbeat TTL
  onvm:inst:<host>               hash: instance id -> JSON of service, state, rates, load
                                 (expires with the heartbeat TTL)
  onvm:svc:<service>             sorted set of "<host>/<instance>", score = last seen ms
  onvm:decl:<service>            hash: host -> JSON [min, max] its inventory declares (written
                                 when the host joins, withdrawn when it leaves)
  onvm:left:<host>               set by a host that stops cleanly (undeploy), for a while
Coordination between the scalers (global_view.py):
  onvm:cooldown:<service>        SET NX PX: the one scaler acting on <service> this cooldown
  onvm:below:<service>:<lost>    SET NX PX: the one scaler saying <service> fell under its
                                 minimum when hosts <lost> (comma-separated) were lost
The scale queues (scale_queue.py):
  onvm:scaleq:<host>             stream of requests for <host>, consumer group "onvm-scaler"
  onvm:pending                   sorted set of the stream entries not finished, "<host> <entry id>",
                                 score = when queued there (ms): what orphans() looks at
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


def host(host: str) -> str:
    return _k("host", host)


def instances(host: str) -> str:
    return _k("inst", host)


def service(service: str) -> str:
    return _k("svc", service)


def left(host: str) -> str:
    return _k("left", host)


def declared(service: str) -> str:
    return _k("decl", service)


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
HOSTS = _k("hosts")
MEMBERS = _k("members")
SERVICES = _k("services")
PENDING = _k("pending")
