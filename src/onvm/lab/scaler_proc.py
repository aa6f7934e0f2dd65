"""An onvm-scaler agent of a test's or a benchmark's own host: its
configuration written to a file, the daemon started from the project's venv,
its log kept beside the configuration."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .manager import REPO

SCALER = os.path.join(REPO, ".venv/bin/onvm-scaler")


def start(
    host: str,
    redis_url: str,
    config: dict[str, Any],
    where: Path,
    metrics_port: int | None = None,
    password_file: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start an agent for ``host`` with ``config`` (src/onvm/scaler/config.py's
    JSON); its log is ``where``/scaler.log.  Stop it with terminate()."""
    path = where / "scaler.json"
    path.write_text(json.dumps({"host": host, **config}))
    args = [SCALER, "--host", host, "--redis", redis_url, "--config", str(path)]
    if metrics_port is not None:
        args += ["--metrics", "127.0.0.1:%d" % metrics_port]
    if password_file is not None:
        args += ["--redis-password-file", password_file]
    with open(where / "scaler.log", "wb") as log:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(10)
