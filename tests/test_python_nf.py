"""An NF written in Python (native/nfs/pyfilter, on onvm.nf's cffi binding of
libonvm_nf), as a container like any other: in a chain it drops exactly
the denied ports and passes the rest; at its limit the scaler starts a
second instance of it and then every packet arrives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from onvm.lab import traffic
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import VERSION, wait_until

from .test_scaling import CAP, Scaled, events, running, scaled_host

IMAGE = "onvm/pyfilter:%s" % VERSION


def pyfilter_conf(*args: str) -> nc.ServiceConf:
    return nc.ServiceConf(image=IMAGE, args=list(args), shared_core=True)


@pytest.fixture
def py_host(
    request: pytest.FixtureRequest,
    tag: str,
    built: None,
    docker_client: Any,
    redis_server: RedisServer,
    tmp_path: Any,
) -> Iterator[Scaled]:
    conf = pyfilter_conf(*request.param)
    with scaled_host(tag, docker_client, redis_server, tmp_path, "pyfilter", conf) as sc:
        yield sc


@pytest.mark.dataplane
@pytest.mark.docker
@pytest.mark.parametrize("py_host", [("--deny", "1000-1999")], indirect=True)
def test_a_python_nf_filters_in_a_chain(py_host: Scaled, docker_client: Any) -> None:
    (c,) = nc.find(docker_client, py_host.mgr.host, "pyfilter")
    assert c.status == "running" and c.attrs["HostConfig"]["NetworkMode"] == "none"
    rx = traffic.Receiver(py_host.egress)
    try:
        traffic.send(py_host.ingress, 4000, dports="1000-4999", rate=4000)  # one frame a port
        counts = rx.wait_for(3000)
    finally:
        counts = rx.stop()
    assert (counts["received"], counts["dups"]) == (3000, 0)  # 1000-1999 denied
    assert wait_until(lambda: running(py_host.mgr, "pyfilter")[0]["processed"] == 4000, 10)
    (inst,) = running(py_host.mgr, "pyfilter")
    assert (inst["rx"], inst["dropped"], inst["tx"]) == (4000, 1000, 3000)


@pytest.mark.dataplane
@pytest.mark.docker
@pytest.mark.parametrize("py_host", [("--rate", str(CAP))], indirect=True)
def test_the_scaler_scales_a_python_nf_out_like_any_other(py_host: Scaled) -> None:
    r = py_host.redis.client()
    py_host.start_scaler()
    py_host.offer(4 * 3000, 3000)  # 1.5x what one instance takes
    assert wait_until(lambda: len(running(py_host.mgr, "pyfilter")) == 2, 20)
    (out,) = events(r, "scale-out-requested")
    assert (out["service"], out["host"], out["reason"]) == ("pyfilter", py_host.mgr.host, "local")
    both = py_host.offer(4 * 3000, 3000)
    assert both["received"] == 4 * 3000 and both["dups"] == 0
