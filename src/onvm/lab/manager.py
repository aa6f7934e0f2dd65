"""An onvm-mgr process for a lab host: start, wait until it answers, stop,
and check that it left nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import manager_proc, names
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsReader, default_path

# the checkout this package runs from (src/onvm/lab/ -> the top of the tree)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("ONVM_BUILD_DIR", os.path.join(REPO, "build"))


def binary(name: str) -> str:
    return os.path.join(BUILD, name)


# files a manager of a host would leave: hugepage files, runtime dir, stats
# area, supervision files
leftovers = names.leftovers


class ManagerProcess:
    """onvm-mgr --host HOST ... as a child process, logging to a file."""

    def __init__(
        self,
        host: str,
        ports: list[str] | None = None,
        core: int = 0,
        mem_mb: int = 64,
        extra: list[str] | None = None,
        log_dir: str = "/tmp",
    ) -> None:
        self.host = host
        self.args = [binary("onvm-mgr"), "--host", host, "--core", str(core), "--mem", str(mem_mb)]
        for spec in ports or []:
            self.args += ["--port", spec]
        self.args += extra or []
        self.log_path = os.path.join(log_dir, names.daemon(names.MANAGER, host) + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ManagerProcess:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("onvm-mgr exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                self.ctl().close()
                return self
            except CtlError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("onvm-mgr did not come up within %.0f s:\n%s" % (timeout, self.log()))

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def ctl(self) -> CtlClient:
        return CtlClient(self.host)

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        with self.ctl() as c:
            reply: dict[str, Any] = c.call(cmd, **args)
        return reply

    def stats(self) -> StatsReader:
        return StatsReader(default_path(self.host))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL; returns the exit code.  A manager that did
        not exit cleanly (a test killed it -9) cannot remove its files: they
        are removed here, as the manager module's state=absent does."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode < 0:  # ended by a signal, not by its own clean exit
            manager_proc.remove_leftovers(self.host)
        return self.proc.returncode

    def __enter__(self) -> ManagerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
