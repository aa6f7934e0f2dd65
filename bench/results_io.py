"""What every benchmark does last: show which targets it met, write its figures."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def report(checks: dict[str, bool], result: dict[str, Any], out: str) -> None:
    """Print the targets, then write ``result`` (plus the time and the targets) to ``out``."""
    for name, ok in checks.items():
        print("  [%s] %s" % ("ok" if ok else "MISSED", name))
    result = {**result, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "targets_met": checks}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print("wrote", out)
