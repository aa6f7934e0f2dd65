"""Single-host demo: onvm-mgr on this machine with two af_packet ports on
lab veths, firewall -> forward as NF containers, 10,000 frames pushed
through the chain and counted at the far end.

    sudo .venv/bin/python -m onvm.lab.demo [--frames N]
"""

from __future__ import annotations

import argparse
import os
import sys

import docker

from . import traffic
from .pktio import parse_range
from .single_host import firewall_forward, wait_until

DPORTS = "1000-4999"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=10_000, help="frames to send (default 10000)")
    args = ap.parse_args(argv)
    n = args.frames
    ports = parse_range(DPORTS)
    expect = sum(1 for s in range(n) if not 1000 <= ports[s % len(ports)] <= 1999)
    tag = "d%d" % (os.getpid() % 10000)
    with firewall_forward(tag, docker.from_env()) as chain:
        print("onvm-mgr up for host %s; chain web: port0 -> firewall -> forward -> port1" % chain.mgr.host)
        for nf in chain.mgr.call("nf_list")["nfs"]:
            print("  NF instance %d: %s (container, pid %d)" % (nf["instance"], nf["service"], nf["pid"]))
        rx = traffic.Receiver(chain.ports[1])
        try:
            traffic.send(chain.ports[0], n, dports=DPORTS, rate=20_000)
            wait_until(lambda: chain.nf(chain.fw["instance"]).get("processed") == n)
            counts = rx.wait_for(expect)
        finally:
            counts = rx.stop()
        fw = chain.nf(chain.fw["instance"])
        print("sent %d frames (udp dports %s) into port0" % (n, DPORTS))
        print(
            "firewall: %d processed, %d dropped (rule: deny udp dport 1000-1999)"
            % (fw["processed"], fw["dropped"])
        )
        print(
            "far end of port1: %d received, %d duplicates (expected %d)"
            % (counts["received"], counts["dups"], expect)
        )
        ok = counts["received"] == expect and fw["dropped"] == n - expect and counts["dups"] == 0
    print("demo %s; everything it made is removed" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
