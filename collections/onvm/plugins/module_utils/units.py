# SPDX-License-Identifier: GPL-3.0-or-later
"""systemd units of onvm's daemons, where systemd is PID 1: the text (pure,
unit-tested and checked with ``systemd-analyze verify``), the file, and
``systemctl``.  The modules that own a daemon's command line (manager,
scaler) write its unit: one writer per unit, which also decides on restarts.

Boot order on a host: hugepages (kernel command line, or the count
``systemd-sysctl`` applies) and the hugetlbfs mount, the NIC bindings
(driverctl's udev rule, at device add), then ``onvm-mgr-<host>``, then the
NF containers (Docker's restart policy: they retry until their manager
runs), then ``onvm-scaler-<host>`` (after its manager and the network)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

UNIT_DIR = "/etc/systemd/system"
# what every onvm data-plane daemon comes after at boot
DATAPLANE_AFTER = (
    "network.target",
    "systemd-sysctl.service",
    "dev-hugepages.mount",
    "systemd-udev-trigger.service",
)


class UnitError(Exception):
    """systemctl failed; the message says what it said."""


def systemd_is_init() -> bool:
    """True where systemd is PID 1 (units are used there)."""
    return os.path.isdir("/run/systemd/system")


def exec_line(argv: Sequence[str]) -> str:
    """``argv`` as an ExecStart= value: each word double-quoted, with
    systemd's escapes for backslash, quote and ``%`` (a specifier)."""
    return " ".join('"%s"' % a.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") for a in argv)


def unit_text(
    description: str,
    argv: Sequence[str],
    marker: str,
    after: Sequence[str] = ("network.target",),
    wants: Sequence[str] = (),
    restart: str = "on-failure",
    service: Sequence[str] = (),
) -> str:
    """A simple service running ``argv``; ``marker`` (the configuration's
    fingerprint) is kept in a comment, so a new configuration is a new text."""
    unit = ["[Unit]", "Description=%s" % description]
    if after:
        unit.append("After=%s" % " ".join(after))
    if wants:
        unit.append("Wants=%s" % " ".join(wants))
    unit += ["", "[Service]", "Type=simple", "ExecStart=%s" % exec_line(argv)]
    unit += ["Restart=%s" % restart, "RestartSec=1", *service]
    unit += ["# onvm-config %s" % marker, "", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(unit)


def install(name: str, text: str, unit_dir: str = UNIT_DIR) -> bool:
    """Write (or update) the unit file ``name``; True if it changed (and
    systemd was told: daemon-reload)."""
    if current_text(name, unit_dir) == text:
        return False
    path = unit_path(name, unit_dir)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    subprocess.run(["systemctl", "daemon-reload"], check=True, capture_output=True)
    return True


def remove(name: str, unit_dir: str = UNIT_DIR) -> bool:
    """Stop and disable the unit ``name`` and remove its file; True if there was one."""
    path = unit_path(name, unit_dir)
    if not os.path.exists(path):
        return False
    subprocess.run(["systemctl", "disable", "--now", name], capture_output=True, check=False)
    os.unlink(path)
    subprocess.run(["systemctl", "daemon-reload"], check=True, capture_output=True)
    return True


def systemctl(action: str, name: str) -> None:
    proc = subprocess.run(["systemctl", action, name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UnitError("systemctl %s %s: %s" % (action, name, proc.stderr.strip()))


def unit_path(name: str, unit_dir: str = UNIT_DIR) -> str:
    return os.path.join(unit_dir, name)


def current_text(name: str, unit_dir: str = UNIT_DIR) -> str | None:
    try:
        with open(unit_path(name, unit_dir)) as f:
            return f.read()
    except OSError:
        return None


def main_pid(name: str) -> int | None:
    """The running unit's main pid (None: not running)."""
    proc = subprocess.run(
        ["systemctl", "show", "-p", "MainPID", "--value", name], capture_output=True, text=True, check=False
    )
    try:
        pid = int(proc.stdout.strip() or 0)
    except ValueError:
        return None
    return pid or None
