"""The ring loop across two managers of this machine: speed_tester on host
A -> bounce on host B (over a memif fabric link, in NSH) -> back to A.  It
measures descriptors passed between rings (the generator recycles its mbufs,
no port is in the path), not port-to-port throughput.  bench/fabric.py runs
it beside the raw memif link; tests/test_fabric.py checks that packets keep
going round past an NSH TTL."""

from __future__ import annotations

import json
import os
import subprocess
import time

from .manager import ManagerProcess, binary


def mpps_of(cmd: list[str], seconds: float) -> float:
    """Run a measuring program for ``seconds``; the Mpps its last JSON line reports."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["mpps"])


def speed_tester(host: str, core: int, seconds: float, args: list[str], shared: bool) -> float:
    cmd = [binary("speed_tester"), "--host", host, "--core", str(core)] + (
        ["--shared-core"] if shared else []
    )
    return mpps_of([*cmd, "--", "-t", str(seconds), *args], seconds)


def bounce(host: str, core: int, shared: bool, args: list[str]) -> subprocess.Popen[bytes]:
    cmd = [binary("bounce"), "--host", host, "--core", str(core)] + (["--shared-core"] if shared else [])
    return subprocess.Popen([*cmd, "--", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_registered(mgr: ManagerProcess, service: str) -> None:
    deadline = time.monotonic() + 20
    while not any(n["service"] == service and n["state"] == "running" for n in mgr.call("nf_list")["nfs"]):
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not register with %s" % (service, mgr.host))
        time.sleep(0.05)


def cross_host(seconds: float) -> float:
    """One run of the cross-host loop, on two managers started for it."""
    tag = os.getpid() % 10000
    sock = "/var/run/onvm/bench-fabric-%d.sock" % tag
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    memif = "net_memif0,role=%s,id=0,socket=" + sock + ",socket-abstract=no"
    a = ManagerProcess("fa%d" % tag, [memif % "server"], core=0).start()
    b = ManagerProcess("fb%d" % tag, [memif % "client"], core=1).start()
    nf = bounce(b.host, 1, True, ["-n"])  # -n: on along the chain, back to A
    try:
        wait_registered(b, "bounce")
        a.call("remote_set", service="bounce", host=b.host, port="port0", peer_id=2)
        a.call("service_add", name="speed_tester")
        b.call("remote_set", service="speed_tester", host=a.host, port="port0", peer_id=1)
        chain = {"name": "bench", "services": ["bounce", "speed_tester"], "spi": 7, "ingress": False}
        a.call("chain_set", **chain)
        b.call("chain_set", **chain)
        return speed_tester(a.host, 0, seconds, ["-c", "bench"], True)
    finally:
        nf.terminate()
        nf.wait()
        a.stop()
        b.stop()
        if os.path.exists(sock):
            os.unlink(sock)
