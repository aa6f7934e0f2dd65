"""CPU time of processes, as a share of one core (idle-cost checks, benchmarks)."""

from __future__ import annotations

import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def core_share(pids: list[int], seconds: float = 3.0) -> float:
    """Share of one core the processes used over ``seconds``."""
    before = sum(cpu_seconds(p) for p in pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    return (sum(cpu_seconds(p) for p in pids) - before) / (time.monotonic() - t0)
