"""Least privilege, checked on the running parts: the manager's control
socket is root's only (and another user is refused), and an NF container
runs without a network, without --privileged, read-only, with no new
privileges and with exactly one capability (SYS_NICE) in effect."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import socket_path
from onvm.lab.manager import ManagerProcess
from onvm.lab.single_host import nf_spec

CAP_SYS_NICE = 23  # linux/capability.h


@pytest.mark.dataplane
def test_the_control_socket_is_roots_only(managers: Callable[..., ManagerProcess]) -> None:
    mgr = managers()
    st = os.stat(socket_path(mgr.host))
    assert stat.S_ISSOCK(st.st_mode)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)
    # nobody (uid 65534) cannot even connect; root can
    probe = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')"
    out = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            probe,
            socket_path(mgr.host),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0 and "PermissionError" in out.stderr, out
    assert mgr.call("status")["host"] == mgr.host


def cap_eff(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        line = next(x for x in f if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


@pytest.mark.dataplane
@pytest.mark.docker
def test_an_nf_container_runs_with_least_privilege(
    managers: Callable[..., ManagerProcess], docker_client: Any
) -> None:
    mgr = managers()
    entry = nf_container.start(docker_client, nf_spec(mgr.host, "forward"))
    (c,) = nf_container.find(docker_client, mgr.host, "forward")
    c.reload()
    hc = c.attrs["HostConfig"]
    assert c.status == "running" and entry["instance"] >= 0
    assert hc["NetworkMode"] == "none"
    assert hc["Privileged"] is False
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and hc["CapAdd"] == ["SYS_NICE"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    # what the kernel grants the running NF process, not just what was asked
    pid = int(c.attrs["State"]["Pid"])
    assert cap_eff(pid) == 1 << CAP_SYS_NICE
    with open("/proc/%d/status" % pid) as f:
        assert any(x.split() == ["NoNewPrivs:", "1"] for x in f)
    # and no network interface but loopback in its network namespace
    with open("/proc/%d/net/dev" % pid) as f:
        assert [line.split(":")[0].strip() for line in f.readlines()[2:]] == ["lo"]


ASK = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for line in sys.argv[2:]:
    f.write(line.encode() + b"\\n")
    f.flush()
    print(f.readline().decode().strip())
"""


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_process_in_the_nf_containers_pid_namespace_may_only_register(
    managers: Callable[..., ManagerProcess], docker_client: Any
) -> None:
    """Root in an NF container can reach the control socket (it registers
    through it), but it is not the host's administrator: every other
    command is refused and changes nothing; on the host they are served."""
    mgr = managers()
    nf_container.start(docker_client, nf_spec(mgr.host, "forward"))
    (c,) = nf_container.find(docker_client, mgr.host, "forward")
    c.reload()
    nf_pid = int(c.attrs["State"]["Pid"])
    before = (mgr.call("chain_list"), mgr.call("nf_list"))
    asks = [
        {"cmd": "shutdown"},
        {"cmd": "chain_set", "name": "evil", "services": ["forward"]},
        {"cmd": "drain", "instance": 0, "evict": True},
        {"cmd": "nf_list"},
        {"cmd": "register", "service": "intruder"},
    ]
    lines = [json.dumps(a) for a in asks]
    # the host's python, in the NF containers' PID namespace (the host's files)
    out = subprocess.run(
        [
            "nsenter",
            "--target",
            str(nf_pid),
            "--pid",
            "--",
            sys.executable,
            "-c",
            ASK,
            socket_path(mgr.host),
            *lines,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    replies = [json.loads(x) for x in out.stdout.splitlines()]
    for ask, rep in zip(asks[:-1], replies[:-1], strict=True):
        assert rep["ok"] is False and "may only register" in rep["error"], (ask, rep)
    assert replies[-1]["ok"] is True  # what an NF needs still works (its connection is closed now)
    assert mgr.call("status")["host"] == mgr.host  # not shut down
    chains, nfs = mgr.call("chain_list"), mgr.call("nf_list")
    assert chains == before[0]
    forward = [n for n in nfs["nfs"] if n["service"] == "forward"]
    assert [n["state"] for n in forward] == ["running"]
    # the same requests from the host's own PID namespace are served
    assert mgr.call("chain_set", name="ok", services=["forward"])["ok"] is True
