#!/usr/bin/env python3
"""Kernel baseline: generator -> forwarder -> back to the generator over veth.

Three-party chain built from two network namespaces and two veth pairs:

    gen ns: kb-go ==veth==> fwd ns: kb-fi --(hop 1: the fwd kernel)--> kb-fo
    fwd ns: kb-fo ==veth==> gen ns: kb-gi (hop 2), counted there by kgen

kgen (native/tools/kgen) sends 64-byte UDP frames on kb-go through an AF_PACKET
socket with PACKET_QDISC_BYPASS and counts its own frames arriving on kb-gi.
Every address lives in 198.19.0.0/16, neighbours are static (no ARP), IPv6 is
off, and everything is torn down on exit, error or Ctrl-C.

Usable as a library: ``from kernel_chain import run_kernel_chain``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KGEN_SRC = REPO / "native" / "tools" / "kgen" / "kgen.c"

# Locally administered MACs, one per veth end.
MAC_GO = "02:6b:62:00:01:01"  # gen, out
MAC_FI = "02:6b:62:00:01:02"  # fwd, in
MAC_FO = "02:6b:62:00:02:02"  # fwd, out
MAC_GI = "02:6b:62:00:02:01"  # gen, back in
IP_GO, IP_FI = "198.19.1.1", "198.19.1.2"
IP_FO, IP_GI = "198.19.2.2", "198.19.2.1"
# The frames' destination: a host on the far side of the forwarder, reached
# through gen's kb-gi (a static neighbour in fwd, so no ARP).  By default its
# MAC is not kb-gi's own: kgen's packet socket on kb-gi takes the frames as a
# DPDK generator's port would, and gen's IP stack drops them at once
# (PACKET_OTHERHOST) instead of routing each one to a drop.
DST_IP = "198.19.2.100"
SINK_MAC = "02:6b:62:00:02:64"

# Variants of the middle hop.  "forward" is IPv4 forwarding in fwd, all on the
# sender's core; "forward-rps" is the same with RPS steering fwd's receive
# work to the other core; "bridge" and "tc" are L2 alternatives.
VARIANTS = ("forward", "bridge", "tc")
DEFAULT_VARIANT = "forward"
SENDER_CPU = 0
DEFAULT_MODE = "mmsg"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


def _ip(ns: str, *args: str) -> None:
    _run("ip", "-n", ns, *args)


def _nsexec(ns: str, *args: str) -> None:
    _run("ip", "netns", "exec", ns, *args)


def build_kgen(outdir: Path) -> Path:
    """Compile kgen.c into outdir and return the binary's path."""
    binary = outdir / "kgen"
    _run("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", str(binary), str(KGEN_SRC))
    return binary


class Chain:
    """The two namespaces and two veth pairs; a context manager that cleans up."""

    def __init__(self, variant: str, rps: bool = True, return_mac: str = "sink") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        self.variant = variant
        self.rps = rps and (os.cpu_count() or 1) > 1
        self.ret_mac = SINK_MAC if return_mac == "sink" else MAC_GI
        tag = f"onvm-kb-{os.getpid()}"
        self.gen = f"{tag}-gen"
        self.fwd = f"{tag}-fwd"
        self.created: list[str] = []

    def __enter__(self) -> Chain:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for ns in reversed(self.created):
            _run("ip", "netns", "del", ns, check=False)
        self.created.clear()

    def _setup(self) -> None:
        gen, fwd = self.gen, self.fwd
        for ns in (gen, fwd):
            _run("ip", "netns", "add", ns)
            self.created.append(ns)
            # Off before the veths exist, so they never get an IPv6 address.
            for key in ("all", "default"):
                _nsexec(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            _ip(ns, "link", "set", "lo", "up")
        # Both pairs are created inside the namespaces: nothing shows in the
        # root namespace, and deleting the namespaces deletes the pairs.
        _ip(
            gen,
            "link",
            "add",
            "kb-go",
            "address",
            MAC_GO,
            "type",
            "veth",
            "peer",
            "name",
            "kb-fi",
            "address",
            MAC_FI,
            "netns",
            fwd,
        )
        _ip(
            fwd,
            "link",
            "add",
            "kb-fo",
            "address",
            MAC_FO,
            "type",
            "veth",
            "peer",
            "name",
            "kb-gi",
            "address",
            MAC_GI,
            "netns",
            gen,
        )
        for ns, dev, addr in (
            (gen, "kb-go", IP_GO),
            (fwd, "kb-fi", IP_FI),
            (fwd, "kb-fo", IP_FO),
            (gen, "kb-gi", IP_GI),
        ):
            _nsexec(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            _ip(ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip(ns, "link", "set", dev, "up")
        if self.variant == "bridge":
            _ip(fwd, "link", "add", "kb-br", "type", "bridge", "stp_state", "0")
            for dev in ("kb-fi", "kb-fo"):
                _ip(fwd, "link", "set", dev, "master", "kb-br")
            _ip(fwd, "link", "set", "kb-br", "up")
            _run("bridge", "-n", fwd, "fdb", "replace", self.ret_mac, "dev", "kb-fo", "master", "static")
        elif self.variant == "tc":
            # L2 hop: a classic-BPF "match all" on fwd's ingress redirects every
            # IPv4 frame to kb-fo unchanged (this kernel has cls_bpf and mirred,
            # not matchall/u32/skbmod).
            _run("tc", "-n", fwd, "qdisc", "add", "dev", "kb-fi", "clsact")
            _run(
                "tc",
                "-n",
                fwd,
                "filter",
                "add",
                "dev",
                "kb-fi",
                "ingress",
                "protocol",
                "ip",
                "bpf",
                "bytecode",
                "1,6 0 0 4294967295,",
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                "kb-fo",
            )
        else:
            _nsexec(fwd, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            _ip(fwd, "neigh", "replace", DST_IP, "lladdr", self.ret_mac, "dev", "kb-fo", "nud", "permanent")
            _ip(fwd, "neigh", "replace", IP_GO, "lladdr", MAC_GO, "dev", "kb-fi", "nud", "permanent")
        if self.rps:
            # Hand fwd's receive work (hop 1, and hop 2 that it sets off) to the
            # core the sender is not pinned to.
            mask = 1 << (1 - SENDER_CPU)
            _nsexec(fwd, "sh", "-c", f"echo {mask:x} > /sys/class/net/kb-fi/queues/rx-0/rps_cpus")
        _ip(gen, "neigh", "replace", IP_FI, "lladdr", MAC_FI, "dev", "kb-go", "nud", "permanent")

    def dst_mac(self) -> str:
        """The MAC the generator addresses: the first hop's port, or the end host."""
        return MAC_FI if self.variant == "forward" else self.ret_mac


def run_kgen(
    kgen: Path, chain: Chain, seconds: float, warmup: float, mode: str, batch: int
) -> dict[str, Any]:
    """Run kgen in the gen namespace and return its JSON figures."""
    sender = SENDER_CPU
    cmd = [
        "ip",
        "netns",
        "exec",
        chain.gen,
        str(kgen),
        "--tx",
        "kb-go",
        "--rx",
        "kb-gi",
        "--dst-mac",
        chain.dst_mac(),
        "--src-ip",
        IP_GO,
        "--dst-ip",
        DST_IP,
        "--seconds",
        str(seconds),
        "--warmup",
        str(warmup),
        "--mode",
        mode,
        "--batch",
        str(batch),
        "--tx-cpu",
        str(sender),
    ]
    if (os.cpu_count() or 1) > 1:
        cmd += ["--rx-cpu", os.environ.get("KB_RX_CPU", str(1 - sender))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + warmup + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"kgen failed ({proc.returncode}): {err.strip()}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_kernel_chain(
    seconds: float,
    *,
    variant: str = DEFAULT_VARIANT,
    mode: str = DEFAULT_MODE,
    batch: int = 64,
    warmup: float = 0.5,
    rps: bool = True,
    return_mac: str = "sink",
    kgen: Path | None = None,
) -> dict[str, Any]:
    """Build the chain, measure for `seconds`, tear it down, return the figures."""
    with tempfile.TemporaryDirectory(prefix="onvm-kb-") as tmp:
        binary = kgen if kgen is not None else build_kgen(Path(tmp))
        with Chain(variant, rps, return_mac) as chain:
            res = run_kgen(binary, chain, seconds, warmup, mode, batch)
    sent = int(res["sent"])
    received = int(res["received"])
    return {
        "bench": "kernel_chain",
        "variant": variant,
        "rps": rps,
        "return_mac": return_mac,
        "hops": 2,
        "frame_bytes": 64,
        "mode": res["mode"],
        "batch": res["batch"],
        "seconds": res["seconds"],
        "sent": sent,
        "received": received,
        "loss": (sent - received) / sent if sent else 0.0,
        "mpps": res["mpps"],
        "tx_mpps": sent / float(res["seconds"]) / 1e6,
    }


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=3.0, help="measured window (default 3)")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up before it (default 0.5)")
    ap.add_argument(
        "--variant", choices=VARIANTS, default=DEFAULT_VARIANT, help=f"middle hop (default {DEFAULT_VARIANT})"
    )
    ap.add_argument(
        "--mode",
        choices=("ring", "mmsg"),
        default=DEFAULT_MODE,
        help="kgen sender: PACKET_TX_RING or sendmmsg (default %(default)s)",
    )
    ap.add_argument("--batch", type=int, default=64, help="frames per send call (default 64)")
    ap.add_argument(
        "--no-rps",
        dest="rps",
        action="store_false",
        help="keep all kernel work on the sender's core (default: RPS on fwd's"
        " port hands it to the other core)",
    )
    ap.add_argument(
        "--return-mac",
        choices=("sink", "gen"),
        default="sink",
        help="MAC of the returning frames: a sink host kgen sniffs (gen's stack"
        " ignores them) or kb-gi's own (gen's stack routes them to a drop)",
    )
    ap.add_argument("--kgen", type=Path, help="prebuilt kgen binary (default: compile it)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.monotonic()
    try:
        res = run_kernel_chain(
            args.seconds,
            variant=args.variant,
            mode=args.mode,
            batch=args.batch,
            warmup=args.warmup,
            rps=args.rps,
            return_mac=args.return_mac,
            kgen=args.kgen,
        )
    except KeyboardInterrupt:
        print("kernel_chain: interrupted, cleaned up", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        print(f"kernel_chain: {exc} {detail}".strip(), file=sys.stderr)
        return 1
    print(
        f"kernel chain ({res['variant']}, {res['mode']}): {res['mpps']:.3f} Mpps through "
        f"2 veth hops, sent {res['sent']} received {res['received']} "
        f"in {res['seconds']:.2f} s (loss {res['loss']:.2%}, "
        f"total {time.monotonic() - start:.1f} s)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
