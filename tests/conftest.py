"""Fixtures: the build and the images (once), and per test a unique tag that
names its host, DPDK file prefix, namespaces, interfaces and containers;
everything a test makes is removed after it, pass or fail."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from onvm.lab.deployment import Deployment
from onvm.lab.figures import record
from onvm.lab.hugepages import ensure_free
from onvm.lab.manager import REPO, ManagerProcess
from onvm.lab.redis_server import RedisServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def built() -> None:
    """The data plane and the NF images, built by the same script CI uses."""
    subprocess.run(
        ["bash", os.path.join(REPO, "native/docker/build-images.sh")], check=True, stdout=subprocess.DEVNULL
    )


@pytest.fixture(scope="session")
def docker_client(built: None) -> Any:
    return docker.from_env()


@pytest.fixture
def tag() -> str:
    """Short and unique in a session (interface names are at most 15
    characters): a name is never reused while the kernel may still be
    tearing down the namespace that had it."""
    return "%02d%03d" % (os.getpid() % 100, next(_counter) % 1000)


@pytest.fixture
def hugepages() -> int:
    return ensure_free(96)


@pytest.fixture
def managers(
    tag: str, hugepages: int, built: None, docker_client: Any
) -> Iterator[Callable[..., ManagerProcess]]:
    """Factory of managers for host 't<tag>'; stops them and removes their
    NF containers afterwards."""
    started: list[ManagerProcess] = []

    def make(ports: list[str] | None = None, **kw: Any) -> ManagerProcess:
        mgr = ManagerProcess("t" + tag, ports, **kw)
        started.append(mgr)
        return mgr.start()

    yield make
    for mgr in started:
        nf_container.remove_host(docker_client, mgr.host)
        mgr.stop()


@pytest.fixture
def redis_server(tag: str) -> Iterator[RedisServer]:
    """A redis-server of this test's own (port from its tag), stopped after."""
    server = RedisServer(20000 + int(tag) % 20000).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reliability() -> Iterator[dict[str, Any]]:
    """Figures the fault, fuzz and soak tests measure (frames lost per fault,
    inputs fuzzed, ...); written to $ONVM_RELIABILITY_OUT (bench/reliability.py
    sets it) at the end of the session, merged into what is there."""
    figures: dict[str, Any] = {}
    yield figures
    record(figures)


@pytest.fixture
def deployment(tag: str, tmp_path: Any) -> Iterator[Deployment]:
    """deploy.yml run for a host of its own (src/onvm/lab/deployment.py:
    firewall -> forward on lab ports port0 -> port1, scaler, Redis);
    undeployed afterwards."""
    ensure_free(200)
    d = Deployment("d" + tag, tmp_path)
    try:
        first = d.run("deploy.yml")
        assert first.returncode == 0, first.stdout[-4000:]
        yield d
    finally:
        d.remove()
