# SPDX-License-Identifier: BSD-3-Clause
"""Declared chains against a manager's chains: normalising, diffing and
applying (module ``onvm.nfv.chain``)."""

from __future__ import annotations

from typing import Any

from . import names
from .onvm_ctl import CtlClient

MATCH_KEYS = ("in_port", "proto", "src", "dst", "src_port", "dst_port")


class ChainSpecError(ValueError):
    """A declared chain is malformed; the message names the chain and key."""


def normalise(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The comparable form of a chain, as the manager's chain_list reports it."""
    if not isinstance(spec, dict):
        raise ChainSpecError("chain %s: must be a mapping" % name)
    unknown = set(spec) - {"services", "match", "egress", "ingress", "spi"}
    if unknown:
        raise ChainSpecError("chain %s: unknown key(s) %s" % (name, ", ".join(sorted(unknown))))
    services = spec.get("services")
    if not isinstance(services, list) or not services or not all(isinstance(s, str) for s in services):
        raise ChainSpecError("chain %s: services must be a non-empty list of service names" % name)
    match = dict(spec.get("match") or {})
    bad = set(match) - set(MATCH_KEYS)
    if bad:
        raise ChainSpecError("chain %s: match: unknown key(s) %s" % (name, ", ".join(sorted(bad))))
    in_port = names.port_index(match.get("in_port"))
    if in_port is not None:
        match["in_port"] = in_port
    if "proto" in match:
        match["proto"] = _proto(match["proto"])
    for key in ("src", "dst"):
        if isinstance(match.get(key), str):
            if match[key].endswith("/0"):
                del match[key]  # any address: the manager stores no prefix
            elif "/" not in match[key]:
                match[key] += "/32"
    egress = spec.get("egress")
    if isinstance(egress, int) and not isinstance(egress, bool):
        egress = names.port_name(egress)
    out = {
        "services": list(services),
        "match": match,
        "egress": egress,
        "ingress": bool(spec.get("ingress", True)),
    }
    if spec.get("spi") is not None:
        out["spi"] = int(spec["spi"])
    return out


def _proto(value: Any) -> Any:
    """A protocol as the manager reports it: "udp", "tcp", else its number."""
    names = {"udp": 17, "tcp": 6, "icmp": 1}
    number = names.get(value.lower(), value) if isinstance(value, str) else value
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    return {17: "udp", 6: "tcp"}.get(number, number) if isinstance(number, int) else value


def remote_diff(nfs: list[dict[str, Any]], want: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Stand-ins to set and to delete, from the manager's nf_list (a stand-in
    the scaler drained, its host running none for now, is still there)."""
    have = {
        (n["service"], n["remote_host"])
        for n in nfs
        if n.get("remote_host") and n["state"] in ("running", "draining")
    }
    wanted = {(r["service"], r["host"]): r for r in want}
    return {
        "set": [r for key, r in sorted(wanted.items()) if key not in have],
        "delete": [{"service": s, "host": h} for (s, h) in sorted(have) if (s, h) not in wanted],
    }


def check(name: str, spec: dict[str, Any], services: set[str], n_ports: int) -> str | None:
    """Why the manager would refuse this chain, or None (checked for every
    chain before any is applied, so nothing is half-changed)."""
    unknown = [s for s in spec["services"] if s not in services]
    if unknown:
        return "chain %s: unknown service(s) %s" % (name, ", ".join(unknown))
    for key, port in (("egress", spec["egress"]), ("match.in_port", spec["match"].get("in_port"))):
        if port is None:
            continue
        index = names.port_index(port)
        if index is None or not index < n_ports:
            return "chain %s: %s: no port %s on this host (it has %d)" % (name, key, port, n_ports)
    return None


def current(ctl: CtlClient) -> dict[str, dict[str, Any]]:
    """The manager's chains in normalised form."""
    out = {}
    for c in ctl.call("chain_list")["chains"]:
        out[c["name"]] = {
            "services": c["services"],
            "match": c["match"],
            "egress": c["egress"],
            "ingress": c["ingress"],
            "spi": c["spi"],
        }
    return out


def _same(have: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    """``have`` (the manager's, with its spi) matches ``want`` (spi optional)."""
    return have is not None and all(have.get(k) == v for k, v in want.items())


def diff(
    have: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]], purge: bool
) -> dict[str, list[str]]:
    """Names to set (new or changed) and to delete."""
    to_set = sorted(n for n, spec in want.items() if not _same(have.get(n), spec))
    to_delete = sorted(n for n in have if n not in want) if purge else []
    return {"set": to_set, "delete": to_delete}


def apply(ctl: CtlClient, want: dict[str, dict[str, Any]], changes: dict[str, list[str]]) -> None:
    for name in changes["set"]:
        spec = want[name]
        ctl.call("chain_set", name=name, **spec)
    for name in changes["delete"]:
        ctl.call("chain_del", name=name)
