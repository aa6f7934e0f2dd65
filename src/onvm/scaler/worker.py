"""Serve this host's scale queue: start an instance ("out") with the same
module_utils code as the ``onvm.nfv.nf`` module, or drain and stop one
("in"); ack once done.  A request is carried out at most once: the instance
it starts carries its id in a label, and scale_queue.begin() lets only one
attempt start anything."""

from __future__ import annotations

import logging
from typing import Any

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as q
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError

from . import events
from .config import ScalerConfig

log = logging.getLogger("onvm-scaler")
LABEL_REQUEST = "org.onvm.request"


def _running(client: Any, host: str, service: str) -> list[Any]:
    return [c for c in nc.find(client, host, service) if c.status == "running"]


def free_index(names: list[str], host: str, service: str) -> int:
    """Smallest instance index not taken by a container of the service."""
    taken = set(names)
    i = 0
    while nc.instance_name(host, service, i) in taken:
        i += 1
    return i


def scale_out(r: Any, client: Any, cfg: ScalerConfig, req: q.ScaleRequest) -> tuple[str, str]:
    """Start one instance for ``req``; returns (final state, detail)."""
    svc = cfg.services.get(req.service)
    if svc is None:
        return "failed", "%s does not run %s (not in its onvm_services)" % (cfg.host, req.service)
    existing = nc.find(client, cfg.host, req.service)
    for c in existing:
        if c.labels.get(LABEL_REQUEST) == req.id:
            return "done", "%s (started by an earlier attempt)" % c.name
    if not q.begin(r, req):
        return "done", "already begun elsewhere; not starting a second instance"
    q.settle(r)  # begun, on a replica too: a failover now does not make it begin twice
    running = [c for c in existing if c.status == "running"]
    if len(running) >= svc.max:
        return "failed", "%s already runs %d of %s (its max)" % (cfg.host, len(running), req.service)
    spec = nc.spec_for(
        cfg.host,
        req.service,
        svc.conf,
        free_index([c.name for c in existing], cfg.host, req.service),
    )
    spec.labels[LABEL_REQUEST] = req.id
    entry = nc.start(client, spec)
    events.emit(
        r,
        "scale-out",
        req.service,
        host=cfg.host,
        container=spec.name,
        instance=int(entry["instance"]),
        request=req.id,
        origin=req.origin,
    )
    log.info(
        "started %s (instance %s) for request %s from %s", spec.name, entry["instance"], req.id, req.origin
    )
    return "done", spec.name


def scale_in(r: Any, client: Any, cfg: ScalerConfig, req: q.ScaleRequest) -> tuple[str, str]:
    """Drain and stop the instance whose manager id ``req.instance`` holds."""
    svc = cfg.services.get(req.service)
    running = _running(client, cfg.host, req.service)
    with CtlClient(cfg.host) as ctl:
        pid = next((n["pid"] for n in ctl.call("nf_list")["nfs"] if str(n["instance"]) == req.instance), None)
    target = next((c for c in running if int(c.attrs["State"]["Pid"]) == pid), None)
    if target is None:
        return "done", "instance %s of %s is not running" % (req.instance, req.service)
    if svc is not None and len(running) <= svc.min:
        return "failed", "%s runs only %d of %s (its min)" % (cfg.host, len(running), req.service)
    drained = nc.drain(cfg.host, int(req.instance), cfg.policy.drain_bound, cfg.policy.drain_bound + 30)
    nc.stop(client, target.name)
    events.emit(
        r,
        "scale-in",
        req.service,
        host=cfg.host,
        container=target.name,
        request=req.id,
        flows_moved=int(drained.get("flows_moved") or 0),
        rx=int(drained.get("rx") or 0),
        processed=int(drained.get("processed") or 0),
    )
    log.info("drained and stopped %s for request %s: %s", target.name, req.id, drained)
    return "done", target.name


def handle(r: Any, client: Any, cfg: ScalerConfig, entry_id: str, req: q.ScaleRequest) -> None:
    q.mark(r, req.id, "started")
    try:
        final, detail = (scale_out if req.kind == "out" else scale_in)(r, client, cfg, req)
    except redis.RedisError:
        raise  # the request stays pending: delivered again once Redis (or its new primary) answers
    except (nc.NFError, CtlError, OSError) as e:
        final, detail = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a docker error must not kill the daemon
        final, detail = "failed", "%s: %s" % (type(e).__name__, e)
    if final == "failed":
        log.warning("request %s (%s %s) failed: %s", req.id, req.kind, req.service, detail)
        events.emit(r, "request-failed", req.service, host=cfg.host, request=req.id, detail=detail)
    q.ack(r, cfg.host, entry_id, req, detail=detail, final=final)
