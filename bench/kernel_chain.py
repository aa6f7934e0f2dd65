#!/usr/bin/env python3
"""Kernel baseline: generator -> forwarder -> back to the generator, over veth.

Two network namespaces and two veth pairs make a two-hop chain:

    gen ns  kb-go ==veth 1==> kb-fi  fwd ns      (hop 1: fwd's kernel moves
    gen ns  kb-gi <==veth 2== kb-fo  fwd ns       the frame from kb-fi to kb-fo)
                                                 (hop 2: veth 2 back into gen)

kgen (native/tools/kgen) sends 64-byte UDP/IPv4 frames on kb-go through an
AF_PACKET socket with PACKET_QDISC_BYPASS (sendmmsg) and counts, on kb-gi, the
frames it sent in the measured window that came back.  The figure is frames
received back per second.

Middle hops (--variant):
  tc       fwd's clsact ingress on kb-fi redirects every IPv4 frame to kb-fo
           (cls_bpf match-all + act_mirred), unchanged, as a forwarding NF that
           does not rewrite the frame would; the fastest (the default)
  forward  IPv4 forwarding (ip_forward=1, route lookup, TTL, MAC rewrite)
  bridge   a Linux bridge in fwd with kb-fi and kb-fo as ports

With two or more CPUs, RPS on kb-fi hands fwd's receive work (hop 1 and the hop 2
it sets off) to the core the sender is not pinned to; --no-rps keeps all the
kernel's work on the sender's core.  The returning frames are addressed to a
sink MAC, not kb-gi's own: kgen's packet socket takes them as a generator's
port would and gen's IP stack ignores them (--return-mac gen hands them to
gen's stack, which routes each one to a drop).

Addresses only in 198.19.0.0/16; static neighbours (no ARP); IPv6 off; the
namespaces (and so the veths) are deleted on exit, error, Ctrl-C or SIGTERM.
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
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KGEN_SRC = REPO / "native" / "tools" / "kgen" / "kgen.c"

# Locally administered MACs, one per veth end, and the sink host's.
MAC_GO = "02:6b:62:00:01:01"  # gen, out
MAC_FI = "02:6b:62:00:01:02"  # fwd, in
MAC_FO = "02:6b:62:00:02:02"  # fwd, out
MAC_GI = "02:6b:62:00:02:01"  # gen, back in
SINK_MAC = "02:6b:62:00:02:64"
IP_GO, IP_FI = "198.19.1.1", "198.19.1.2"
IP_FO, IP_GI = "198.19.2.2", "198.19.2.1"
DST_IP = "198.19.2.100"  # the frames' destination, beyond fwd, on gen's kb-gi link

VARIANTS = ("tc", "forward", "bridge")
MODES = ("mmsg", "ring")
SENDER_CPU = 0


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


def _two_cpus() -> bool:
    return (os.cpu_count() or 1) > 1


class Chain:
    """The two namespaces and two veth pairs; a context manager that removes them."""

    def __init__(self, variant: str = "tc", rps: bool = True, return_mac: str = "sink") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        self.variant = variant
        self.rps = rps and _two_cpus()
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
        """Delete the namespaces; their veths go with them."""
        while self.created:
            _run("ip", "netns", "del", self.created.pop(), check=False)

    @property
    def dst_mac(self) -> str:
        """The MAC kgen addresses: fwd's port when it routes, else the sink beyond it."""
        return MAC_FI if self.variant == "forward" else self.ret_mac

    def _setup(self) -> None:
        gen, fwd = self.gen, self.fwd
        for ns in (gen, fwd):
            self.created.append(ns)
            _run("ip", "netns", "add", ns)
            # Off before the veths exist, so they never get an IPv6 address.
            for key in ("all", "default"):
                _nsexec(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            _ip(ns, "link", "set", "lo", "up")
        # Created inside the namespaces: nothing appears in the root namespace.
        _ip(gen, "link", "add", "kb-go", "address", MAC_GO, "type", "veth",
            "peer", "name", "kb-fi", "address", MAC_FI, "netns", fwd)  # fmt: skip
        _ip(fwd, "link", "add", "kb-fo", "address", MAC_FO, "type", "veth",
            "peer", "name", "kb-gi", "address", MAC_GI, "netns", gen)  # fmt: skip
        for ns, dev, addr in (
            (gen, "kb-go", IP_GO),
            (fwd, "kb-fi", IP_FI),
            (fwd, "kb-fo", IP_FO),
            (gen, "kb-gi", IP_GI),
        ):
            _nsexec(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
            _ip(ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip(ns, "link", "set", dev, "up")
        _ip(gen, "neigh", "replace", IP_FI, "lladdr", MAC_FI, "dev", "kb-go", "nud", "permanent")
        if self.variant == "forward":
            _nsexec(fwd, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            _ip(fwd, "neigh", "replace", DST_IP, "lladdr", self.ret_mac, "dev", "kb-fo", "nud", "permanent")
            _ip(fwd, "neigh", "replace", IP_GO, "lladdr", MAC_GO, "dev", "kb-fi", "nud", "permanent")
        elif self.variant == "bridge":
            _ip(fwd, "link", "add", "kb-br", "type", "bridge", "stp_state", "0")
            for dev in ("kb-fi", "kb-fo"):
                _ip(fwd, "link", "set", dev, "master", "kb-br")
            _ip(fwd, "link", "set", "kb-br", "up")
            _run("bridge", "-n", fwd, "fdb", "replace", self.ret_mac, "dev", "kb-fo", "master", "static")
        else:
            # Classic-BPF "accept" as the match-all (this kernel has cls_bpf and
            # act_mirred, not matchall/u32/flower), then redirect to kb-fo.
            _run("tc", "-n", fwd, "qdisc", "add", "dev", "kb-fi", "clsact")
            _run("tc", "-n", fwd, "filter", "add", "dev", "kb-fi", "ingress", "protocol", "ip",
                 "bpf", "bytecode", "1,6 0 0 4294967295,",
                 "action", "mirred", "egress", "redirect", "dev", "kb-fo")  # fmt: skip
        if self.rps:
            mask = 1 << (1 - SENDER_CPU)
            _nsexec(fwd, "sh", "-c", f"echo {mask:x} > /sys/class/net/kb-fi/queues/rx-0/rps_cpus")


def run_kgen(
    kgen: Path, chain: Chain, seconds: float, warmup: float, mode: str, batch: int
) -> dict[str, Any]:
    """Run kgen in chain's gen namespace; return its JSON line as a dict."""
    cmd = ["ip", "netns", "exec", chain.gen, str(kgen), "--tx", "kb-go", "--rx", "kb-gi",
           "--dst-mac", chain.dst_mac, "--src-ip", IP_GO, "--dst-ip", DST_IP,
           "--seconds", str(seconds), "--warmup", str(warmup), "--mode", mode, "--batch", str(batch),
           "--tx-cpu", str(SENDER_CPU)]  # fmt: skip
    if _two_cpus():
        cmd += ["--rx-cpu", str(1 - SENDER_CPU)]
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
    variant: str = "tc",
    rps: bool = True,
    mode: str = "mmsg",
    batch: int = 64,
    warmup: float = 0.5,
    return_mac: str = "sink",
    kgen: Path | None = None,
) -> dict[str, Any]:
    """Build the chain, measure for `seconds`, tear it down; return the figures (mpps first)."""
    with tempfile.TemporaryDirectory(prefix="onvm-kb-") as tmp:
        binary = kgen if kgen is not None else build_kgen(Path(tmp))
        with Chain(variant, rps, return_mac) as chain:
            res = run_kgen(binary, chain, seconds, warmup, mode, batch)
            rps_used = chain.rps
    sent, received = int(res["sent"]), int(res["received"])
    return {
        "mpps": float(res["mpps"]),
        "bench": "kernel_chain",
        "variant": variant,
        "rps": rps_used,
        "return_mac": return_mac,
        "hops": 2,
        "frame_bytes": 64,
        "generators": 1,
        "mode": res["mode"],
        "batch": res["batch"],
        "seconds": float(res["seconds"]),
        "sent": sent,
        "received": received,
        "loss": (sent - received) / sent if sent else 0.0,
        "tx_mpps": sent / float(res["seconds"]) / 1e6,
    }


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Run as root.  Prints one line; writes a file only with --json.",
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="measured window (default 3)")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up before it (default 0.5)")
    ap.add_argument("--variant", choices=VARIANTS, default="tc", help="middle hop (default tc)")
    ap.add_argument("--no-rps", dest="rps", action="store_false", help="keep the kernel's work on one core")
    ap.add_argument(
        "--mode", choices=MODES, default="mmsg", help="kgen sender: sendmmsg or PACKET_TX_RING (default mmsg)"
    )
    ap.add_argument("--batch", type=int, default=64, help="frames per send call (default 64)")
    ap.add_argument(
        "--return-mac",
        choices=("sink", "gen"),
        default="sink",
        help="returning frames to a sink MAC kgen sniffs (default) or to kb-gi's own MAC",
    )
    ap.add_argument("--kgen", type=Path, metavar="PATH", help="prebuilt kgen (default: compile it)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures there")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        res = run_kernel_chain(
            args.seconds,
            variant=args.variant,
            rps=args.rps,
            mode=args.mode,
            batch=args.batch,
            warmup=args.warmup,
            return_mac=args.return_mac,
            kgen=args.kgen,
        )
    except KeyboardInterrupt:
        print("kernel_chain: interrupted (namespaces removed)", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:
        print(f"kernel_chain: {' '.join(exc.cmd)}: {(exc.stderr or '').strip()}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"kernel_chain: {exc}", file=sys.stderr)
        return 1
    print(
        f"kernel chain, 2 veth hops ({res['variant']}, rps {'on' if res['rps'] else 'off'}, "
        f"{res['mode']}): {res['mpps']:.3f} Mpps back at the generator "
        f"({res['received']} of {res['sent']} frames in {res['seconds']:.2f} s, loss {res['loss']:.2%})"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
