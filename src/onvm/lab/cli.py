"""onvm-lab: tools for this machine's lab only (never for a rack).

onvm-lab send [--host local] [--port 0] [--count 10000] [--dports 1000-4999] [--rate 100000]
        frames into a lab port's namespace, counted where the chain lets them out
onvm-lab demo [--frames N]
        the single-host demo: a manager, firewall -> forward, frames through it
onvm-lab scale-demo [--redis URL] [--json FILE]
        the auto-scaling demo on the three-host lab (inventory/lab deployed)
"""

from __future__ import annotations

import argparse
import sys

from . import demo, scale_demo, traffic
from .netns import VethPort


def send(host: str, port: int, count: int, dports: str, rate: float) -> int:
    try:
        result = traffic.send(VethPort.of(host, port), count, dports=dports, rate=rate)
    except RuntimeError as e:
        print("onvm-lab: %s" % e, file=sys.stderr)
        return 1
    print(result.stdout.read().decode().strip() if result.stdout else "")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="onvm-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    se = sub.add_parser("send", help="send marked UDP frames into a lab port (from its namespace)")
    se.add_argument("--host", default="local")
    se.add_argument("--port", type=int, default=0, help="lab port index (default 0)")
    se.add_argument("--count", type=int, default=10_000)
    se.add_argument("--dports", default="1000-4999", help="UDP destination port or range, cycled")
    se.add_argument("--rate", type=float, default=100_000, help="frames per second at most")
    sub.add_parser(
        "demo", help="the single-host demo (its own options: onvm-lab demo --help)", add_help=False
    )
    sub.add_parser(
        "scale-demo",
        help="the scaling demo on the lab (its own options: onvm-lab scale-demo --help)",
        add_help=False,
    )
    args, rest = ap.parse_known_args(argv)
    if args.cmd == "demo":
        return demo.main(rest, prog="onvm-lab demo")
    if args.cmd == "scale-demo":
        return scale_demo.main(rest, prog="onvm-lab scale-demo")
    if rest:
        ap.error("unrecognized arguments: %s" % " ".join(rest))
    return send(args.host, args.port, args.count, args.dports, args.rate)


if __name__ == "__main__":
    sys.exit(main())
