"""Figures the reliability tests measure, merged into the file
bench/reliability.py names in $ONVM_RELIABILITY_OUT (nothing when unset)."""

from __future__ import annotations

import json
import os
from typing import Any


def record(figures: dict[str, Any]) -> None:
    """Merge ``figures`` into $ONVM_RELIABILITY_OUT, keeping what is there."""
    out = os.environ.get("ONVM_RELIABILITY_OUT")
    if not out or not figures:
        return
    old: dict[str, Any] = {}
    if os.path.exists(out):
        with open(out) as f:
            old = json.load(f)
    with open(out, "w") as f:
        json.dump({**old, **figures}, f, indent=2)
