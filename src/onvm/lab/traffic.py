"""Drive pktio inside a lab namespace: a receiver in the background, a
sender in the foreground."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from .netns import VethPort


class Receiver:
    """Counts marked frames arriving at ``port.peer`` in its namespace."""

    def __init__(self, port: VethPort, seqs: bool = False) -> None:
        fd, self.out = tempfile.mkstemp(prefix="onvm-recv-", suffix=".json")
        os.close(fd)
        os.unlink(self.out)
        cmd = port.ns.exec_args(
            sys.executable,
            "-m",
            "onvm.lab.pktio",
            "recv",
            "--iface",
            port.peer,
            "--out",
            self.out,
            *(["--seqs"] if seqs else []),
        )
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.out):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.stop()
                raise RuntimeError("receiver did not start: %s" % err)
            time.sleep(0.02)

    def counts(self) -> dict[str, int]:
        with open(self.out) as f:
            data: dict[str, int] = json.load(f)
        return data

    def wait_for(self, received: int, timeout: float = 30.0) -> dict[str, int]:
        """Counts once ``received`` frames have arrived (or the guard expires)."""
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while counts["received"] < received and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = self.counts()
        return counts

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        counts = self.counts() if os.path.exists(self.out) else {}
        for path in (self.out, self.out + ".tmp"):
            if os.path.exists(path):
                os.unlink(path)
        return counts


def send(
    port: VethPort,
    count: int,
    dports: str = "9",
    rate: float = 100000.0,
    first: int = 0,
    wait: bool = True,
    flow_len: int = 1,
) -> subprocess.Popen[bytes]:
    """Send ``count`` marked frames from ``port.peer`` into the manager."""
    cmd = port.ns.exec_args(
        sys.executable,
        "-m",
        "onvm.lab.pktio",
        "send",
        "--iface",
        port.peer,
        "--count",
        str(count),
        "--dports",
        dports,
        "--rate",
        str(rate),
        "--first",
        str(first),
        "--flow-len",
        str(flow_len),
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait and proc.wait(300) != 0:
        raise RuntimeError("sender failed: %s" % (proc.stderr.read().decode() if proc.stderr else ""))
    return proc


def send_until_stopped(port: VethPort, dports: str, rate: float, first: int = 0) -> subprocess.Popen[bytes]:
    """Frames at ``rate`` until :func:`stop_sending` (an hour's worth at most)."""
    return send(port, int(rate * 3600), dports=dports, rate=rate, first=first, wait=False)


def stop_sending(proc: subprocess.Popen[bytes]) -> int:
    """Stop a sender; the frames it sent."""
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    sent: int = json.loads(out.decode().strip().splitlines()[-1])["sent"]
    return sent
