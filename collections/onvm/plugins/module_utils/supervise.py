# SPDX-License-Identifier: BSD-3-Clause
"""Daemons started detached where systemd is not PID 1: a session of their
own, a pid file and a state file with the fingerprint of the configuration
they were started with, a readiness check, and a stop that asks nicely first.
One implementation for the manager and the scaler."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .names import LOG_DIR, STATE_DIR


class DaemonError(Exception):
    """A daemon could not be started; the message carries its log's tail."""


def fingerprint(config: Any) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: str) -> str:
    """SHA-256 of a file's content ("missing" if it cannot be read)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(65536), b""):
                h.update(chunk)
    except OSError:
        return "missing"
    return h.hexdigest()


@dataclass
class Daemon:
    """A named daemon: ``name`` names its pid, state and log files."""

    name: str
    argv: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    state_dir: str = STATE_DIR
    log_dir: str = LOG_DIR

    @property
    def pid_file(self) -> str:
        return os.path.join(self.state_dir, self.name + ".pid")

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, self.name + ".json")

    @property
    def log_file(self) -> str:
        return os.path.join(self.log_dir, self.name + ".log")

    def pid(self) -> int | None:
        """The recorded pid if that process still runs our binary."""
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")[:2]
        except (OSError, ValueError):
            return None
        # the program itself, or a script run by its interpreter (python onvm-scaler ...)
        ours = os.path.basename(self.argv[0]).encode()
        return pid if any(os.path.basename(part) == ours for part in cmd) else None

    def recorded(self) -> dict[str, Any] | None:
        """What the state file says it was started with (None: no state
        file, or one that is not ours: a stale or damaged one is no record)."""
        try:
            with open(self.state_file) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def same_config(self) -> bool:
        rec = self.recorded()
        return rec is not None and rec.get("fingerprint") == fingerprint(self.config)

    def start(self, ready: Callable[[], bool], timeout: float = 60.0) -> int:
        """Start detached; wait until ``ready()``.  On failure nothing stays
        running and the error carries the log's tail."""
        if not os.path.isfile(self.argv[0]):
            raise DaemonError("%s: no such program (build or install it first)" % self.argv[0])
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise DaemonError("%s exited with %d: %s" % (self.name, proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise DaemonError("%s not ready within %.0f s: %s" % (self.name, timeout, self.log_tail()))
            time.sleep(0.1)
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % proc.pid)
        self.record(proc.pid)
        return proc.pid

    def record(self, pid: int) -> None:
        """Record ``config`` as what ``pid`` runs now (it took a change
        without a restart)."""
        with open(self.state_file, "w") as f:
            json.dump({"fingerprint": fingerprint(self.config), "config": self.config, "pid": pid}, f)

    def stop(self, pid: int | None = None, timeout: float = 30.0, asked: bool = False) -> bool:
        """Stop ``pid`` (default: the recorded one): SIGTERM, SIGKILL at the
        end of ``timeout``.  ``asked``: a graceful request is already on its
        way (the manager's shutdown): it is given half the timeout before
        SIGTERM.  False if nothing ran."""
        pid = pid if pid is not None else self.pid()
        was = pid is not None and _alive(pid)
        if pid is not None and was:
            deadline = time.monotonic() + timeout
            termed = False
            while _alive(pid):
                now = time.monotonic()
                if now > deadline:
                    os.kill(pid, signal.SIGKILL)
                    break
                if not termed and (not asked or now > deadline - timeout / 2):
                    os.kill(pid, signal.SIGTERM)
                    termed = True
                time.sleep(0.05)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        for path in (self.pid_file, self.state_file):
            if os.path.exists(path):
                os.unlink(path)
        return was

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-lines:])
        except OSError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
