# SPDX-License-Identifier: BSD-3-Clause
"""Validation of the services and chains declared in group_vars.

One implementation, used by the ``onvm.nfv.config_errors`` filter (deploy.yml
checks everything before touching any host) and by the scaler.  Every
message names the bad key.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from . import names
from .chains import MATCH_KEYS, ChainSpecError, normalise
from .chains import check as chain_check
from .nf_container import ServiceConf, check_argv
from .onvm_ctl import name_ok
from .supervise import file_digest

MAX_INSTANCES = 64
SERVICE_KEYS = {
    "image",
    "instances",
    "min_instances",
    "max_instances",
    "args",
    "files",
    "cores",
    "shared_core",
}
CHAIN_KEYS = {"services", "match", "egress", "ingress_host", "spi"}


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def service_errors(name: str, svc: Any) -> list[str]:
    where = "onvm_services.%s" % name
    if not name_ok(str(name)):
        return ["%s: the name must be 1-31 characters of [A-Za-z0-9_.-]" % where]
    if not isinstance(svc, dict):
        return ["%s: must be a mapping with at least 'image'" % where]
    errors = ["%s.%s: unknown key" % (where, k) for k in sorted(set(svc) - SERVICE_KEYS)]
    image = svc.get("image")
    if not isinstance(image, str) or not image.strip():
        errors.append("%s.image: required, the name of a local image (e.g. onvm/firewall:0.1.0)" % where)
    counts = {}
    for key, default in (("instances", 1), ("min_instances", None), ("max_instances", None)):
        v = svc.get(key, default)
        if v is None:
            continue
        if not _is_count(v) or not 0 <= v <= MAX_INSTANCES:
            errors.append("%s.%s: must be an integer 0-%d, got %r" % (where, key, MAX_INSTANCES, v))
        else:
            counts[key] = v
    lo = counts.get("min_instances", 0)
    hi = counts.get("max_instances", MAX_INSTANCES)
    if "instances" in counts and not lo <= counts["instances"] <= hi:
        errors.append(
            "%s.instances: %d is outside min_instances..max_instances (%d..%d)"
            % (where, counts["instances"], lo, hi)
        )
    args = svc.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, (str, int)) for a in args):
        errors.append("%s.args: must be a list of strings" % where)
    files = svc.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("/") for k, v in files.items()
    ):
        errors.append("%s.files: must map a file under files/ to an absolute path inside the NF" % where)
    cores = svc.get("cores", [])
    if not isinstance(cores, list) or not all(_is_count(c) and c >= 0 for c in cores):
        errors.append("%s.cores: must be a list of cpu numbers" % where)
    return errors


def chain_errors(name: str, chain: Any, services: dict[str, Any]) -> list[str]:
    where = "onvm_chains.%s" % name
    if not name_ok(str(name)):
        return ["%s: the name must be 1-31 characters of [A-Za-z0-9_.-]" % where]
    if not isinstance(chain, dict):
        return ["%s: must be a mapping with 'services'" % where]
    errors = ["%s.%s: unknown key" % (where, k) for k in sorted(set(chain) - CHAIN_KEYS)]
    svcs = chain.get("services")
    if not isinstance(svcs, list) or not svcs:
        errors.append("%s.services: required, a non-empty list of service names" % where)
        svcs = []
    for i, s in enumerate(svcs):
        if s not in services:
            errors.append("%s.services[%d]: unknown service '%s' (not in onvm_services)" % (where, i, s))
        elif s in svcs[:i]:
            errors.append("%s.services[%d]: '%s' appears twice: a chain may not loop" % (where, i, s))
    if len(svcs) > 8:
        errors.append("%s.services: at most 8 services in a chain" % where)
    match = chain.get("match", {}) or {}
    if not isinstance(match, dict):
        errors.append("%s.match: must be a mapping" % where)
    else:
        errors += [
            "%s.match.%s: unknown key (%s)" % (where, k, ", ".join(MATCH_KEYS))
            for k in sorted(set(match) - set(MATCH_KEYS))
        ]
        for key in ("src_port", "dst_port"):
            v = match.get(key)
            if v is not None and (not _is_count(v) or not 1 <= v <= 65535):
                errors.append("%s.match.%s: must be 1-65535, got %r" % (where, key, v))
    egress = chain.get("egress")
    if egress is not None and not (_is_count(egress) or (isinstance(egress, str) and egress)):
        errors.append("%s.egress: a port name such as port1, or null" % where)
    return errors


def fabric_ports(fabric: dict[str, str] | None, first: int) -> dict[str, str]:
    """Peer host -> the port name its fabric link gets on this host: fabric
    ports follow the lab ports, in peer-name order."""
    return {peer: names.port_name(first + i) for i, peer in enumerate(sorted(fabric or {}))}


def remotes(
    host: str,
    chains: dict[str, Any],
    services_by_host: dict[str, dict[str, Any]],
    fabric: dict[str, str] | None,
    first_fabric_port: int,
) -> list[dict[str, str]]:
    """The stand-ins ``host`` needs: for each service of its chains, one per
    other host that declares it (even with 0 instances: the scaler may start
    some there, and then keeps the stand-in's load current, or drains it while
    that host runs none), reached through the fabric port towards that host.
    Raises ValueError naming what is missing."""
    ports = fabric_ports(fabric, first_fabric_port)
    mine = set(services_by_host.get(host) or {})
    out = []
    needed = sorted({s for c in (chains or {}).values() for s in c.get("services", [])})
    for svc in needed:
        runners = sorted(h for h, svcs in services_by_host.items() if h != host and svc in (svcs or {}))
        if not runners and svc not in mine:
            raise ValueError("service '%s' of a chain runs on no host" % svc)
        for peer in runners:
            if peer not in ports:
                raise ValueError("%s needs %s from %s but has no onvm_fabric port to it" % (host, svc, peer))
            out.append({"service": svc, "host": peer, "port": ports[peer]})
    return out


def host_chains(chains: dict[str, Any] | None, host: str) -> dict[str, Any]:
    """The chains as ``host``'s manager gets them: classified into only on
    their ingress host (``ingress_host``, default every host)."""
    out = {}
    for name, chain in (chains or {}).items():
        spec = {k: v for k, v in chain.items() if k != "ingress_host"}
        spec["ingress"] = chain.get("ingress_host", host) == host
        out[name] = spec
    return out


def host_chain_errors(chains: dict[str, Any] | None, host: str, n_ports: int) -> list[str]:
    """Why ``host``'s manager would refuse one of its chains for the ports it
    has (``n_ports``: lab, fabric and onvm_ports), [] if none: the chain
    module's own check, run before any host is touched.  Services are
    checked for the whole cluster by ``config_errors``."""
    errors = []
    for name, spec in host_chains(chains, host).items():
        try:
            want = normalise(name, spec)
        except ChainSpecError as e:
            errors.append(str(e))
            continue
        problem = chain_check(name, want, set(want["services"]), n_ports)
        if problem:
            errors.append("%s: %s" % (host, problem))
    return errors


def config_errors(services: Any, chains: Any) -> list[str]:
    """Everything wrong with onvm_services / onvm_chains, [] if nothing."""
    if not isinstance(services, dict):
        return ["onvm_services: must be a mapping of service name to its settings"]
    if chains is None:
        chains = {}
    if not isinstance(chains, dict):
        return ["onvm_chains: must be a mapping of chain name to its settings"]
    errors: list[str] = []
    for name, svc in services.items():
        errors += service_errors(name, svc)
    for name, chain in chains.items():
        errors += chain_errors(name, chain, services)
    return errors


def nf_files(files: dict[str, str] | None, host: str) -> dict[str, str]:
    """A service's files as its instances mount them: where roles/onvm_nfs
    puts each one on ``host`` -> its path inside the NF."""
    return {names.config_file(host, src): dst for src, dst in (files or {}).items()}


def nf_staged_files(files: dict[str, str] | None, host: str) -> dict[str, str]:
    """Where the first play stages a service's files for its option check
    (the ``nf`` module's ``check_files``): path inside the NF -> staged copy."""
    return {dst: "%s/%s" % (staged_dir(host), os.path.basename(src)) for src, dst in (files or {}).items()}


staged_dir = names.staged_dir


def nf_file_digests(files: dict[str, str] | None, host: str, files_dir: str) -> dict[str, str]:
    """SHA-256 of a service's files as the play will put them on ``host``
    (read from ``files_dir`` on the control node), by their host path: what
    the ``nf`` module's check mode compares with what the instances run."""
    return {names.config_file(host, src): file_digest(os.path.join(files_dir, src)) for src in (files or {})}


def nf_file_check(name: str, services: dict[str, Any] | None, host: str) -> str:
    """The command (for ``ansible.builtin.copy``'s ``validate``, ``%s`` the
    new file) that asks the first service mounting the file ``name`` under
    onvm_files_dir whether it would start with it (nf_container.check_argv);
    "" if no service mounts it."""
    for service, svc in sorted((services or {}).items()):
        for src, dst in (svc.get("files") or {}).items():
            if src != name:
                continue
            conf = ServiceConf(
                image=svc["image"],
                args=[str(a) for a in svc.get("args", [])],
                files=nf_files(svc.get("files"), host),
            )
            return shlex.join(check_argv(host, service, conf, {dst: "%s"}))
    return ""


def scale_floor(svc: dict[str, Any]) -> int:
    """The fewest instances of a service the scaler keeps on a host:
    ``min_instances``, or else ``instances`` (what deploy.yml starts)."""
    return int(svc.get("min_instances", svc.get("instances", 1)))


def scaler_config(
    host: str,
    services: dict[str, Any] | None,
    fabric: dict[str, str] | None,
    first_fabric_port: int,
    policy: dict[str, Any] | None = None,
    cpus: int = 0,
    chains: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """onvm-scaler's configuration for ``host`` (its --config file).  A
    service's instances go from its minimum (``scale_floor``) to
    ``max_instances``; each instance is specified exactly as the ``nf``
    module specifies it, so that neither replaces the other's.  ``chains``: this host's chains as the
    chain module sets them (host_chains), which the scaler puts back on a
    restarted manager.  ``cluster``: every inventory host -> its
    onvm_services; a service's cluster minimum (the sum of their minimums)
    is what the scalers keep when a host is lost."""
    everyone = cluster if cluster else {host: services}
    cluster_min: dict[str, int] = {}
    for svcs in everyone.values():
        for name, s in (svcs or {}).items():
            cluster_min[name] = cluster_min.get(name, 0) + scale_floor(s)
    return {
        "host": host,
        "cpus": cpus,
        "chains": host_chains(chains, host),
        "cluster_min": dict(sorted(cluster_min.items())),
        "policy": dict(policy or {}),
        "fabric": fabric_ports(fabric, first_fabric_port),
        "services": {
            name: {
                "image": s["image"],
                "args": [str(a) for a in s.get("args", [])],
                "files": nf_files(s.get("files"), host),
                "cores": list(s.get("cores", [])),
                "shared_core": bool(s.get("shared_core", False)),
                "min": scale_floor(s),
                "max": s.get("max_instances", s.get("instances", 1)),
            }
            for name, s in sorted((services or {}).items())
        },
    }
