# SPDX-License-Identifier: BSD-3-Clause
"""onvm-mgr as a supervised process: the one implementation of starting,
checking and stopping a host's manager (module ``onvm.nfv.manager``, tests).

Where systemd is PID 1 the manager runs as a unit ``onvm-mgr-<host>.service``;
elsewhere (lab machines, containers) it is started detached, in a session of
its own, with a pid file and a state file recording the configuration it was
started with, so that a re-run with the same configuration changes nothing
and a changed one restarts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .onvm_ctl import DEFAULT_RUNTIME_DIR, CtlClient, CtlError

STATE_DIR = "/run/onvm"
LOG_DIR = "/var/log/onvm"
UNIT_DIR = "/etc/systemd/system"


class ManagerError(Exception):
    """The manager could not be started or stopped; the message says why."""


@dataclass
class ManagerConfig:
    """How a host's onvm-mgr runs; every field ends up on its command line."""

    host: str
    binary: str = "/usr/local/bin/onvm-mgr"
    ports: list[str] = field(default_factory=list)
    core: int = 0
    mem_mb: int = 64
    mbufs: int = 8191
    flow_idle: int = 10
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    huge_dir: str | None = None
    extra_eal: list[str] = field(default_factory=list)

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
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def paths(host: str, state_dir: str = STATE_DIR, log_dir: str = LOG_DIR) -> dict[str, str]:
    return {
        "pid": os.path.join(state_dir, "onvm-mgr-%s.pid" % host),
        "state": os.path.join(state_dir, "onvm-mgr-%s.json" % host),
        "log": os.path.join(log_dir, "onvm-mgr-%s.log" % host),
        "unit": os.path.join(UNIT_DIR, "onvm-mgr-%s.service" % host),
    }


def systemd_is_init() -> bool:
    """True where systemd is PID 1 (units are used there)."""
    return os.path.isdir("/run/systemd/system")


def unit_text(cfg: ManagerConfig) -> str:
    """The systemd unit for ``cfg`` (pure; unit-tested)."""
    quoted = " ".join("'%s'" % a.replace("'", "") for a in cfg.argv())
    return (
        "[Unit]\n"
        "Description=onvm manager of host %s (DPDK primary)\n"
        "After=network.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        "ExecStart=%s\n"
        "Restart=on-failure\n"
        "RestartSec=1\n"
        "LimitMEMLOCK=infinity\n"
        "# onvm-config %s\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n" % (cfg.host, quoted, cfg.fingerprint())
    )


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"onvm-mgr" in f.read()
    except OSError:
        return False


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def status(host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, state_dir: str = STATE_DIR) -> dict[str, Any]:
    """What runs now: ``running``, ``pid``, ``config`` (as started), ``answers``
    (its control socket replied)."""
    p = paths(host, state_dir)
    pid = _read_pid(p["pid"])
    config: dict[str, Any] | None = None
    try:
        with open(p["state"]) as f:
            config = json.load(f)
    except (OSError, ValueError):
        config = None
    answers = False
    live_pid: int | None = None
    try:
        with CtlClient(host, runtime_dir, timeout=5) as ctl:
            live_pid = int(ctl.call("status")["pid"])
            answers = True
    except CtlError:
        pass
    running = answers and (pid is None or pid == live_pid)
    return {"running": running, "pid": live_pid if answers else None, "config": config, "answers": answers}


def start(
    cfg: ManagerConfig, timeout: float = 60.0, state_dir: str = STATE_DIR, log_dir: str = LOG_DIR
) -> int:
    """Start the manager detached and wait until its control socket answers.
    On failure nothing stays running and the log's tail is in the error."""
    if not os.path.isfile(cfg.binary):
        raise ManagerError("onvm-mgr binary not found at %s (build native/ first)" % cfg.binary)
    p = paths(cfg.host, state_dir, log_dir)
    os.makedirs(state_dir, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    with open(p["log"], "ab") as log:
        proc = subprocess.Popen(
            cfg.argv(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ManagerError(
                "onvm-mgr for host %s exited with %d: %s" % (cfg.host, proc.returncode, log_tail(p["log"]))
            )
        try:
            with CtlClient(cfg.host, cfg.runtime_dir, timeout=5) as ctl:
                ctl.call("status")
            break
        except CtlError:
            time.sleep(0.1)
    else:
        proc.kill()
        proc.wait()
        raise ManagerError(
            "onvm-mgr for host %s did not answer within %.0f s: %s" % (cfg.host, timeout, log_tail(p["log"]))
        )
    with open(p["pid"], "w") as f:
        f.write("%d\n" % proc.pid)
    with open(p["state"], "w") as f:
        json.dump({"fingerprint": cfg.fingerprint(), "config": asdict(cfg), "pid": proc.pid}, f)
    return proc.pid


def stop(
    host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, timeout: float = 30.0, state_dir: str = STATE_DIR
) -> bool:
    """Stop the manager of ``host``: ask it to shut down, then SIGTERM, then
    SIGKILL.  Returns False if none was running."""
    p = paths(host, state_dir)
    pid = _read_pid(p["pid"])
    was = False
    try:
        with CtlClient(host, runtime_dir, timeout=5) as ctl:
            pid = int(ctl.call("status")["pid"])
            was = True
            ctl.call("shutdown")
    except CtlError:
        pass
    if pid is not None and _alive(pid):
        was = True
        deadline = time.monotonic() + timeout
        sent_term = False
        while _alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            if not sent_term and time.monotonic() > deadline - timeout / 2:
                os.kill(pid, signal.SIGTERM)
                sent_term = True
            time.sleep(0.05)
        _reap(pid)
    for key in ("pid", "state"):
        if os.path.exists(p[key]):
            os.unlink(p[key])
    return was


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def unit_name(host: str) -> str:
    return "onvm-mgr-%s.service" % host


def install_unit(cfg: ManagerConfig) -> bool:
    """Write (or update) the unit file; True if it changed (daemon reloaded)."""
    path = paths(cfg.host)["unit"]
    text = unit_text(cfg)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)
    subprocess.run(["systemctl", "daemon-reload"], check=True, capture_output=True)
    return True


def systemctl(action: str, host: str) -> None:
    proc = subprocess.run(["systemctl", action, unit_name(host)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ManagerError("systemctl %s %s: %s" % (action, unit_name(host), proc.stderr.strip()))
