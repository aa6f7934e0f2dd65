"""Send and count test frames on a lab interface (run inside its namespace).

    python -m onvm.lab.pktio send --iface IF --count N [--dports 1000-4999] [--rate PPS]
    python -m onvm.lab.pktio recv --iface IF --out FILE [--seqs]

Frames are Ethernet/IPv4/UDP, 64 bytes on the wire, carrying a marker and a
sequence number; the receiver counts only marked frames, and how many were
seen twice.  It rewrites FILE (JSON) as it goes and once more on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MARKER = b"ONVMLAB1"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")
SRC_IP = socket.inet_aton("198.18.1.1")
DST_IP = socket.inet_aton("198.18.2.2")
FRAME_LEN = 60  # 64 on the wire with the FCS


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(seq: int, sport: int, dport: int) -> bytes:
    """One marked UDP frame."""
    payload = MARKER + struct.pack("!I", seq)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0, SRC_IP, DST_IP)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    eth = DST_MAC + SRC_MAC + b"\x08\x00"
    return (eth + ip + udp).ljust(FRAME_LEN, b"\0")


def parse_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def seq_of(data: bytes) -> int | None:
    """Sequence number of a marked frame, None for anything else."""
    off = 14 + 20 + 8
    if len(data) >= off + 12 and data[off : off + 8] == MARKER:
        return int(struct.unpack("!I", data[off + 8 : off + 12])[0])
    return None


@dataclass
class SendPlan:
    count: int
    dports: list[int]
    sport: int = 40000
    rate: float = 100000.0
    first: int = 0
    flow_len: int = 1  # consecutive frames per destination port (one flow)


def send(iface: str, plan: SendPlan, stop: Callable[[], bool] = lambda: False) -> int:
    """Send ``plan.count`` frames, dports cycling (or until ``stop()``);
    returns frames sent."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    batch = max(1, min(500, int(plan.rate // 200)))  # paced in slices of about 5 ms
    start = time.monotonic()
    for i in range(plan.count):
        seq = plan.first + i
        s.send(frame(seq, plan.sport, plan.dports[(seq // plan.flow_len) % len(plan.dports)]))
        if i % batch == batch - 1:
            if stop():
                s.close()
                return i + 1
            ahead = (i + 1) / plan.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    s.close()
    return plan.count


class Counter:
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.received = 0
        self.dups = 0

    def add(self, seq: int) -> None:
        self.received += 1
        if seq in self.seen:
            self.dups += 1
        self.seen.add(seq)

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "unique": len(self.seen), "dups": self.dups}


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def recv(iface: str, out: str, stop: Callable[[], bool], seqs: bool = False) -> Counter:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: never drop here
    s.bind((iface, 0))
    s.setblocking(False)
    counter = Counter()
    _write(out, {**counter.as_dict(), "ready": True})
    last = 0.0
    while not stop():
        ready, _, _ = select.select([s], [], [], 0.05)
        while ready:
            try:
                data, addr = s.recvfrom(2048)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            seq = seq_of(data)
            if seq is not None:
                counter.add(seq)
        now = time.monotonic()
        if now - last > 0.05:
            _write(out, {**counter.as_dict(), "ready": True})
            last = now
    final: dict[str, Any] = {**counter.as_dict(), "ready": True, "done": True}
    if seqs:
        final["seqs"] = sorted(counter.seen)
    _write(out, final)
    return counter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("send", help="send marked frames")
    sp.add_argument("--iface", required=True)
    sp.add_argument("--count", type=int, required=True)
    sp.add_argument("--dports", default="9", help="destination port or range LO-HI, cycled")
    sp.add_argument("--sport", type=int, default=40000)
    sp.add_argument("--rate", type=float, default=100000.0, help="frames per second at most")
    sp.add_argument("--first", type=int, default=0, help="first sequence number")
    sp.add_argument("--flow-len", type=int, default=1, help="frames in a row to one port (a flow)")
    rp = sub.add_parser("recv", help="count marked frames until SIGTERM")
    rp.add_argument("--iface", required=True)
    rp.add_argument("--out", required=True)
    rp.add_argument("--seqs", action="store_true", help="also write the sequence numbers seen, at the end")
    args = ap.parse_args(argv)
    if args.cmd == "send":
        plan = SendPlan(
            args.count, parse_range(args.dports), args.sport, args.rate, args.first, args.flow_len
        )
        stopping: list[bool] = []  # SIGTERM: stop sending, say how many went
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        print(json.dumps({"sent": send(args.iface, plan, lambda: bool(stopping))}))
        return 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    recv(args.iface, args.out, lambda: bool(stopping), args.seqs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
