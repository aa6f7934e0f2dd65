#!/usr/bin/env python3
"""Benchmark: soak.  Traffic through a chain (in -> forward -> out) for a
while, with a second instance of the NF started, drained and stopped over
and over meanwhile (as the scaler does), and now and then one killed (-9:
Docker's restart policy brings it back).  At the end, with the traffic
gone: the mbuf pool's free count must equal its start and the manager's
resident memory must not have grown; frames lost are counted.  Writes
bench/results/soak.json.

    .venv/bin/python -m bench.soak [--seconds 600]
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.results_io import report
from onvm.lab.manager import REPO
from onvm.lab.soak import checks_of, soak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--kill-every", type=int, default=5, help="kill -9 the NF every N cycles (0: never)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "soak.json"))
    args = ap.parse_args()
    res = soak(args.seconds, "%03d" % (os.getpid() % 1000), args.kill_every)
    print(
        "%.0f s, %d NF start/drain/stop cycles, %d kills: %d of %d frames lost (manager reclaimed %d,"
        " %d had no instance to go to);"
        " pool free %d -> %d of %d; manager RSS %d -> %d KiB"
        % (
            res["seconds"],
            res["cycles"],
            res["nf_kills"],
            res["lost"],
            res["sent"],
            res["reclaimed_by_manager"],
            res["unsteerable"],
            res["pool_free_start"],
            res["pool_free_end"],
            res["pool_size"],
            res["manager_rss_kb_start"],
            res["manager_rss_kb_end"],
        )
    )
    report(checks_of(res), {"bench": "soak", **res}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
