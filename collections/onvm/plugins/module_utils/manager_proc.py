# SPDX-License-Identifier: BSD-3-Clause
"""onvm-mgr as a supervised process: the one implementation of starting,
checking and stopping a host's manager (module ``onvm.nfv.manager``, tests).

Where systemd is PID 1 the manager runs as a unit ``onvm-mgr-<host>.service``;
elsewhere (lab machines, containers) it is started detached, in a session of
its own, with a pid file and a state file recording the configuration it
runs, so that a re-run with the same configuration changes nothing and a
changed one restarts it -- unless the change only appends vdev ports, which
the running manager adds (``port_add``) without a restart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import names, units
from .names import LOG_DIR, STATE_DIR
from .onvm_ctl import DEFAULT_RUNTIME_DIR, CtlClient, CtlError
from .supervise import Daemon, DaemonError, fingerprint


class ManagerError(Exception):
    """The manager could not be started or stopped; the message says why."""


@dataclass
class ManagerConfig:
    """How a host's onvm-mgr runs; every field ends up on its command line."""

    host: str
    binary: str = "/usr/bin/onvm-mgr"
    ports: list[str] = field(default_factory=list)
    core: int = 0
    mem_mb: int = 64
    mbufs: int = 8191
    flow_idle: int = 10
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    huge_dir: str | None = None
    extra_eal: list[str] = field(default_factory=list)
    # the binary's SHA-256 (file_digest), the one field not on the command
    # line: a new build installed at the same path restarts the manager
    binary_digest: str = ""

    def argv(self) -> list[str]:
        args = [
            self.binary,
            "--host",
            self.host,
            "--core",
            str(self.core),
            "--mem",
            str(self.mem_mb),
            "--mbufs",
            str(self.mbufs),
            "--flow-idle",
            str(self.flow_idle),
            "--runtime-dir",
            self.runtime_dir,
        ]
        for port in self.ports:
            args += ["--port", port]
        if self.huge_dir:
            args += ["--huge-dir", self.huge_dir]
        if self.extra_eal:
            args += ["--", *self.extra_eal]
        return args

    def fingerprint(self) -> str:
        return fingerprint(asdict(self))


def daemon(
    cfg: ManagerConfig | None, host: str, state_dir: str = STATE_DIR, log_dir: str = LOG_DIR
) -> Daemon:
    """The detached daemon of ``host``'s manager (``cfg`` None: only to look)."""
    argv = cfg.argv() if cfg is not None else ["onvm-mgr"]
    conf = asdict(cfg) if cfg is not None else {}
    return Daemon(names.daemon(names.MANAGER, host), argv, conf, state_dir, log_dir)


systemd_is_init = units.systemd_is_init


def unit_text(cfg: ManagerConfig) -> str:
    """The systemd unit for ``cfg`` (pure; unit-tested): after what the data
    plane needs at boot (units.DATAPLANE_AFTER)."""
    return units.unit_text(
        "onvm manager of host %s (DPDK primary)" % cfg.host,
        cfg.argv(),
        cfg.fingerprint(),
        after=units.DATAPLANE_AFTER,
        service=("LimitMEMLOCK=infinity",),
    )


def status(host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, state_dir: str = STATE_DIR) -> dict[str, Any]:
    """What runs now: ``running``, ``pid``, ``config`` (the state file: as
    started), ``answers`` (its control socket replied)."""
    live_pid: int | None = None
    try:
        with CtlClient(host, runtime_dir, timeout=5) as ctl:
            live_pid = int(ctl.call("status")["pid"])
    except CtlError:
        pass
    config = daemon(None, host, state_dir).recorded()
    return {
        "running": live_pid is not None,
        "pid": live_pid,
        "config": config,
        "answers": live_pid is not None,
    }


def _answers(host: str, runtime_dir: str) -> bool:
    try:
        with CtlClient(host, runtime_dir, timeout=5) as ctl:
            ctl.call("status")
        return True
    except CtlError:
        return False


def validate(cfg: ManagerConfig, timeout: float = 30.0) -> str | None:
    """Why ``cfg`` would not start, or None: ``onvm-mgr --check`` parses
    and resolves everything (ports, core, hugepages -- those a running
    manager of the host holds count as free) and touches nothing."""
    argv = cfg.argv()
    try:
        proc = subprocess.run(
            [argv[0], "--check", *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s --check: %s" % (argv[0], e)
    if proc.returncode == 0 or "unrecognized option '--check'" in proc.stderr:
        return None  # (a binary older than --check: nothing to ask it)
    return (proc.stderr or proc.stdout).strip() or "%s --check exited %d" % (argv[0], proc.returncode)


def recorded_config(host: str, state_dir: str = STATE_DIR) -> ManagerConfig | None:
    """The configuration the host's detached manager was last started with."""
    rec = daemon(None, host, state_dir).recorded()
    try:
        return ManagerConfig(**rec["config"]) if rec else None
    except (KeyError, TypeError):
        return None


def added_ports(old: ManagerConfig | None, new: ManagerConfig) -> list[str]:
    """The ports ``new`` appends to ``old`` if that is all it changes and
    each is a vdev: the running manager adds them without a restart.  An
    empty list: a restart is needed (or nothing changed)."""
    if old is None or new.ports[: len(old.ports)] != old.ports or replace(new, ports=old.ports) != old:
        return []
    added = new.ports[len(old.ports) :]
    return added if all(p.startswith("net_") for p in added) else []


def add_ports(cfg: ManagerConfig, ports: list[str], pid: int, state_dir: str = STATE_DIR) -> None:
    """Add ``ports`` to the running manager of ``cfg.host`` (the last of
    ``cfg.ports``) and record ``cfg`` as what it runs."""
    for port in ports:
        try:
            with CtlClient(cfg.host, cfg.runtime_dir, timeout=30) as ctl:
                ctl.call("port_add", port=port)
        except CtlError as e:
            raise ManagerError("adding port '%s' to the running manager: %s" % (port, e)) from e
    daemon(cfg, cfg.host, state_dir).record(pid)


def start(
    cfg: ManagerConfig, timeout: float = 60.0, state_dir: str = STATE_DIR, log_dir: str = LOG_DIR
) -> int:
    """Start the manager detached; ready once its control socket answers."""
    d = daemon(cfg, cfg.host, state_dir, log_dir)
    try:
        return d.start(lambda: _answers(cfg.host, cfg.runtime_dir), timeout)
    except DaemonError as e:
        raise ManagerError(str(e)) from e


def stop(
    host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, timeout: float = 30.0, state_dir: str = STATE_DIR
) -> bool:
    """Ask the manager of ``host`` to shut down, then make sure it is gone.
    Returns False if none was running."""
    pid: int | None = None
    try:
        with CtlClient(host, runtime_dir, timeout=5) as ctl:
            pid = int(ctl.call("status")["pid"])
            ctl.call("shutdown")
    except CtlError:
        pass
    d = daemon(None, host, state_dir)
    return d.stop(pid if pid is not None else d.pid(), timeout, asked=pid is not None) or pid is not None


def remove_leftovers(
    host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, huge_dir: str | None = None
) -> list[str]:
    """Remove what a manager of ``host`` that did not exit cleanly left
    (names.leftovers: hugepage files, runtime dir, stats area, supervision
    files); the paths removed.  Call it only when no manager of ``host`` runs."""
    gone = names.leftovers(host, runtime_dir, huge_dir or names.HUGE_DIR)
    for path in gone:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return gone


def unit_name(host: str) -> str:
    return names.unit(names.MANAGER, host)


def install_unit(cfg: ManagerConfig) -> bool:
    """Write (or update) the unit file; True if it changed (daemon reloaded)."""
    return units.install(unit_name(cfg.host), unit_text(cfg))


def systemctl(action: str, host: str) -> None:
    try:
        units.systemctl(action, unit_name(host))
    except units.UnitError as e:
        raise ManagerError(str(e)) from e
