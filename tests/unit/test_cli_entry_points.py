"""The commands as a user types them: `onvm` (the product's CLI) and
`onvm-lab` (the lab's tools, kept apart from it)."""

from __future__ import annotations

import os
import subprocess
import sys

BIN = os.path.dirname(sys.executable)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)


def test_onvm_has_the_operators_commands_and_no_lab_traffic() -> None:
    out = run("onvm", "--help")
    assert out.returncode == 0 and "{status,cluster,top}" in out.stdout
    assert "onvm-lab send" in out.stdout  # where lab traffic went
    bad = run("onvm", "send")
    assert bad.returncode == 2 and "invalid choice: 'send'" in bad.stderr


def test_onvm_lab_names_each_tool_in_its_usage() -> None:
    out = run("onvm-lab", "--help")
    assert out.returncode == 0 and "{send,demo,scale-demo}" in out.stdout
    assert run("onvm-lab", "demo", "--help").stdout.startswith("usage: onvm-lab demo ")
    assert run("onvm-lab", "scale-demo", "--help").stdout.startswith("usage: onvm-lab scale-demo ")
    bad = run("onvm-lab", "send", "--bogus")
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
