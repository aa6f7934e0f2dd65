# SPDX-License-Identifier: BSD-3-Clause
"""Every per-host name and path of onvm, derived here and only here.

Several onvm hosts can share one machine (the lab: three hosts, one kernel,
one Docker engine, one hugepage pool), so everything a host owns carries its
name.  The modules, the roles (through the filter ``onvm.nfv.host_names``),
the scaler, the CLI and the tests take the names from this module; the C
side (onvm-mgr, libonvm_nf) from native/include/onvm/onvm_names.h, which
tests/unit/test_names_c.py holds to the same values.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

# roots (each a parameter where a module takes one)
RUNTIME_DIR = "/var/run/dpdk"  # DPDK's runtime dirs: <root>/onvm-<host>/ holds the control socket
HUGE_DIR = "/dev/hugepages"  # hugetlbfs: a manager's pages are files onvm-<host>map_*
STATS_DIR = "/dev/shm"  # the stats area of each host
STATE_DIR = "/run/onvm"  # pid and state files of the daemons the modules start detached
LOG_DIR = "/var/log/onvm"
CONFIG_DIR = "/etc/onvm"  # per-host configuration: NF files, scaler.json, redis.pass
AGENT_DIR = "/opt/onvm"  # per-host install of the scaling agent: <host>/venv, <host>/onvm-*.whl

MANAGER = "onvm-mgr"
SCALER = "onvm-scaler"


def file_prefix(host: str) -> str:
    """DPDK --file-prefix of ``host``'s manager and NFs (hugepage files,
    runtime dir)."""
    return "onvm-%s" % host


def hugepage_prefix(host: str) -> str:
    """Name prefix of ``host``'s hugepage files in hugetlbfs."""
    return file_prefix(host) + "map_"


def host_runtime_dir(host: str, runtime_dir: str = RUNTIME_DIR) -> str:
    """``host``'s DPDK runtime dir under the root ``runtime_dir``."""
    return os.path.join(runtime_dir, file_prefix(host))


def ctl_socket(host: str, runtime_dir: str = RUNTIME_DIR) -> str:
    """The control socket of ``host``'s manager."""
    return os.path.join(host_runtime_dir(host, runtime_dir), "onvm.sock")


def stats_path(host: str) -> str:
    """The stats area of ``host`` (onvm_stats.h)."""
    return os.path.join(STATS_DIR, file_prefix(host) + ".stats")


def daemon(program: str, host: str) -> str:
    """Name of ``program``'s daemon for ``host``: its pid, state and log
    files are <STATE_DIR>/<name>.pid, .json and <LOG_DIR>/<name>.log."""
    return "%s-%s" % (program, host)


def unit(program: str, host: str) -> str:
    """systemd unit of ``program`` for ``host``."""
    return daemon(program, host) + ".service"


def config_dir(host: str) -> str:
    return os.path.join(CONFIG_DIR, host)


def config_file(host: str, name: str) -> str:
    """A file of ``host``'s configuration (an NF's file by its basename,
    scaler.json, redis.pass)."""
    return os.path.join(config_dir(host), os.path.basename(name))


def staged_dir(host: str) -> str:
    """Where the first play of deploy stages NF files for their check."""
    return os.path.join(config_dir(host), "staged")


def container_prefix(host: str) -> str:
    """Every container of ``host`` is named with this prefix."""
    return "onvm-%s-" % host


def container(host: str, service: str, index: int) -> str:
    """Container of instance ``index`` of ``service`` on ``host``."""
    return "%s%s-%d" % (container_prefix(host), service, index)


def pidns_container(host: str) -> str:
    """The container holding ``host``'s NF PID namespace."""
    return container_prefix(host) + "pidns"


def af_packet_vdev(index: int, iface: str) -> str:
    """The manager's port spec for a veth it opens with net_af_packet."""
    return "net_af_packet%d,iface=%s,framecnt=8192" % (index, iface)


def lab_port(host: str, index: int) -> dict[str, str]:
    """Lab port ``index`` of ``host``: a veth pair whose ``iface`` end the
    manager opens (``vdev``, port ``index``) and whose ``peer`` end sits in
    namespace ``netns``, where lab traffic is sent and counted."""
    iface = "ov%s%d" % (host, index)
    return {
        "iface": iface,
        "peer": "ovp%s%d" % (host, index),
        "netns": "%s-n%d" % (file_prefix(host), index),
        "vdev": af_packet_vdev(index, iface),
    }


def lab_netns_glob(host: str) -> str:
    """Every lab-port namespace of ``host``, as a glob under /run/netns
    (lab_netns_re tells them from another host's whose name starts alike)."""
    return "%s-n*" % file_prefix(host)


def lab_netns_re(host: str) -> str:
    return r"^%s-n[0-9]+$" % re.escape(file_prefix(host))


def leftover_globs(host: str, runtime_dir: str = RUNTIME_DIR, huge_dir: str = HUGE_DIR) -> list[str]:
    """What a manager of ``host`` that did not exit cleanly leaves behind:
    its hugepage files (which keep their pages pinned), its runtime dir
    with the control socket, its stats area, and its supervision files."""
    return [
        os.path.join(huge_dir, hugepage_prefix(host) + "*"),
        host_runtime_dir(host, runtime_dir),
        stats_path(host),
        os.path.join(STATE_DIR, daemon(MANAGER, host) + ".*"),
    ]


def leftovers(host: str, runtime_dir: str = RUNTIME_DIR, huge_dir: str = HUGE_DIR) -> list[str]:
    """The paths of leftover_globs() that exist now."""
    return sorted(p for pattern in leftover_globs(host, runtime_dir, huge_dir) for p in glob.glob(pattern))


def port_name(index: int) -> str:
    """The name of a host's port ``index`` (chains, NF options, stand-ins)."""
    return "port%d" % index


def port_index(name: Any) -> int | None:
    """A port named by its number: "port<N>", a bare "<N>" or the number
    itself; N, or None if ``name`` is not of that form (it may be a DPDK
    device name).  The same rule as onvm_port_index() in onvm_names.h."""
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return name if 0 <= name <= 0xFFFF else None
    if not isinstance(name, str):
        return None
    digits = name[4:] if name.startswith("port") else name
    if not (digits.isascii() and digits.isdigit()):
        return None
    n = int(digits)
    return n if n <= 0xFFFF else None


def host_names(host: str, lab_ports: int = 0) -> dict[str, Any]:
    """Everything above for ``host`` in one dict (the filter the roles use)."""
    return {
        "file_prefix": file_prefix(host),
        "runtime_dir": host_runtime_dir(host),
        "ctl_socket": ctl_socket(host),
        "stats": stats_path(host),
        "config_dir": config_dir(host),
        "staged_dir": staged_dir(host),
        "scaler_config": config_file(host, "scaler.json"),
        "redis_password_file": config_file(host, "redis.pass"),
        "agent_dir": os.path.join(AGENT_DIR, host),
        "container_prefix": container_prefix(host),
        "pidns_container": pidns_container(host),
        "lab_ports": [lab_port(host, i) for i in range(lab_ports)],
        "lab_netns_glob": lab_netns_glob(host),
        "lab_netns_re": lab_netns_re(host),
        "manager_daemon": daemon(MANAGER, host),
        "scaler_daemon": daemon(SCALER, host),
        "manager_leftovers": leftover_globs(host),
    }
