"""The scaler's configuration: one JSON file per host, written by
onvm.nfv.onvm_scaler from group_vars (services with their min and max instance
counts, the fabric ports towards the other hosts, the scaling policy)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.chains import ChainSpecError, normalise
from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import ServiceConf


@dataclass(frozen=True)
class Policy:
    """When an instance is at its limit, and when a service has too many."""

    high: float = 0.9  # load (busy share or rx ring fill) at or above which an instance is at its limit
    low: float = 0.3  # the service could lose an instance if the rest would stay under this load
    window: float = 0.3  # seconds an instance must stay at its limit before one more is started
    in_window: float = (
        5.0  # seconds a service must have one too many before one is drained (slower: no flapping)
    )
    cooldown: float = 5.0  # seconds, per service and cluster-wide, between two actions
    drain_bound: float = 5.0  # seconds a draining instance keeps its flows
    queue_timeout: float = 5.0  # seconds before a request queued on a dead host is placed again

    def errors(self) -> list[str]:
        out = []
        if not 0 < self.low < self.high <= 1:
            out.append("policy: need 0 < low < high <= 1 (got low %s, high %s)" % (self.low, self.high))
        for k in ("window", "in_window", "cooldown", "drain_bound", "queue_timeout"):
            if not 0 <= getattr(self, k) <= 3600:
                out.append("policy: %s must be 0-3600 seconds" % k)
        return out


@dataclass(frozen=True)
class Service:
    conf: ServiceConf
    min: int = 1
    max: int = 1


@dataclass(frozen=True)
class ScalerConfig:
    host: str
    services: dict[str, Service] = field(default_factory=dict)
    fabric: dict[str, str] = field(default_factory=dict)  # peer host -> local fabric port ("portN")
    policy: Policy = field(default_factory=Policy)
    cpus: int = 0  # cores this host gives its NFs (free cores = cpus - their busy shares); 0: all it has
    chains: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # normalised, put back on a restarted manager
    # service -> instances the whole cluster keeps (re-placed when a host is lost); none: this host's min
    cluster_min: dict[str, int] = field(default_factory=dict)


class ConfigError(ValueError):
    pass


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse(data: Any) -> ScalerConfig:
    """Build and check a ScalerConfig; ConfigError lists every problem."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object, not %s" % type(data).__name__)
    errors: list[str] = []
    services: dict[str, Service] = {}
    raw_services = data.get("services") or {}
    if not isinstance(raw_services, dict):
        errors.append("services: must be a mapping of service name to its settings")
        raw_services = {}
    for name, s in raw_services.items():
        try:
            conf = ServiceConf(
                image=str(s["image"]),
                args=[str(a) for a in s.get("args", [])],
                files={str(k): str(v) for k, v in (s.get("files") or {}).items()},
                cores=[int(c) for c in s.get("cores", [])],
                shared_core=bool(s.get("shared_core", False)),
            )
            lo = int(s.get("min", 1))
            hi = int(s.get("max", lo))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            errors.append("services.%s: %s" % (name, e))
            continue
        if not 0 <= lo <= hi:
            errors.append("services.%s: need 0 <= min <= max (got %d, %d)" % (name, lo, hi))
        services[name] = Service(conf, lo, hi)
    raw_policy = data.get("policy") or {}
    bad = [k for k, v in raw_policy.items() if not _number(v)] if isinstance(raw_policy, dict) else []
    if not isinstance(raw_policy, dict):
        errors.append("policy: must be a mapping")
    elif bad:
        errors.append("policy: %s must be numbers" % ", ".join(sorted(map(str, bad))))
    policy = Policy()
    if isinstance(raw_policy, dict) and not bad:
        try:
            policy = Policy(**raw_policy)
        except TypeError as e:
            errors.append("policy: %s" % e)
        errors += policy.errors()
    fabric = data.get("fabric") or {}
    if not isinstance(fabric, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fabric.items()
    ):
        errors.append("fabric: must map peer host names to port names")
        fabric = {}
    if not data.get("host"):
        errors.append("host: missing")
    cpus = data.get("cpus", 0)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not 0 <= cpus <= 4096:
        errors.append("cpus: must be a whole number 0-4096 (0: all the machine's)")
        cpus = 0
    raw_chains = data.get("chains") or {}
    chains: dict[str, dict[str, Any]] = {}
    if not isinstance(raw_chains, dict):
        errors.append("chains: must map chain names to chains")
    else:
        for name, spec in raw_chains.items():
            try:
                chains[str(name)] = normalise(str(name), spec)
            except ChainSpecError as e:
                errors.append("chains: %s" % e)
    raw_min = data.get("cluster_min")
    if raw_min is None:
        cluster_min = {n: s.min for n, s in services.items()}
    elif isinstance(raw_min, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 4096 for v in raw_min.values()
    ):
        cluster_min = {str(k): int(v) for k, v in raw_min.items()}
    else:
        errors.append("cluster_min: must map service names to whole numbers 0-4096")
        cluster_min = {}
    if errors:
        raise ConfigError("; ".join(errors))
    return ScalerConfig(str(data["host"]), services, dict(fabric), policy, cpus, chains, cluster_min)


def load(path: str) -> ScalerConfig:
    try:
        with open(path, encoding="utf-8") as f:
            return parse(json.load(f))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError("%s: %s" % (path, e)) from e
