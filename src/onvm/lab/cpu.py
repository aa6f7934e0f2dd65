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


def shares(pids: dict[str, int], seconds: float = 3.0) -> dict[str, float]:
    """Share of one core each named process used over ``seconds`` (a process
    gone meanwhile: left out)."""

    def read() -> dict[str, float]:
        out = {}
        for name, pid in pids.items():
            try:
                out[name] = cpu_seconds(pid)
            except OSError:
                pass
        return out

    before, t0 = read(), time.monotonic()
    time.sleep(seconds)
    after, dt = read(), time.monotonic() - t0
    return {n: (after[n] - before[n]) / dt for n in after if n in before}


def core_share(pids: list[int], seconds: float = 3.0) -> float:
    """Share of one core the processes used together over ``seconds``."""
    each = shares({str(p): p for p in pids}, seconds)
    gone = {str(p) for p in pids} - set(each)
    if gone:
        raise ProcessLookupError("gone while measured: %s" % ", ".join(sorted(gone)))
    return sum(each.values())
