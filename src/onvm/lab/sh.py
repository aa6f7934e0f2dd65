"""Running commands: one place that raises with the command's own output."""

from __future__ import annotations

import subprocess


class CommandError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise CommandError("%s -> %d: %s" % (" ".join(cmd), proc.returncode, proc.stderr.strip()))
    return proc
