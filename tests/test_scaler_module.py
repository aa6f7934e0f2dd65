"""The scaler module refuses to start an agent whose global view it cannot
reach (Redis down, a password wanted, a wrong one), with a message that
says which, and starts nothing; with the right password it starts one that
heartbeats into that Redis."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils.supervise import Daemon
from ansible_collections.onvm.nfv.plugins.modules import scaler
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner
from onvm.lab.manager import REPO, ManagerProcess
from onvm.lab.promscrape import free_port
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until

BINARY = os.path.join(REPO, ".venv/bin/onvm-scaler")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> ModuleRunner:
    return ModuleRunner(capsys)


@pytest.fixture
def locked_redis(tag: str) -> Iterator[RedisServer]:
    server = RedisServer(20000 + (int(tag) + 11) % 20000, password="pw-" + tag).start()
    try:
        yield server
    finally:
        server.stop()


def secret(tmp_path: Any, text: str) -> str:
    path = tmp_path / "redis.pass"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def agent_pid(host: str) -> int | None:
    pid: int | None = Daemon("onvm-scaler-%s" % host, [BINARY]).pid()
    return pid


def not_running(host: str) -> bool:
    return agent_pid(host) is None


def agent_args(host: str, redis: RedisServer, tmp_path: Any, tag: str) -> dict[str, Any]:
    """The module's arguments for an agent of ``host`` with the password ``redis`` wants."""
    return {
        "host": host,
        "redis": redis.url,
        "binary": BINARY,
        "redis_password_file": secret(tmp_path, "pw-" + tag),
    }


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (None, "wants a password (redis_password_file)"),
        ("wrong", "refused the password (WRONGPASS)"),
    ],
)
def test_a_redis_that_wants_another_password_is_refused(
    run: ModuleRunner, locked_redis: RedisServer, tag: str, tmp_path: Any, password: str | None, message: str
) -> None:
    host = "sm" + tag
    args: dict[str, Any] = {"host": host, "redis": locked_redis.url, "binary": BINARY}
    if password:
        args["redis_password_file"] = secret(tmp_path, password)
    res = run(scaler.main, **args)
    assert res["failed"] and res["msg"] == "redis: Redis at 127.0.0.1:%d %s" % (locked_redis.port, message)
    assert "pw-" not in str(res)
    assert not_running(host)


def test_a_redis_that_is_down_is_refused(run: ModuleRunner, tag: str) -> None:
    host, port = "sm" + tag, free_port()
    res = run(scaler.main, host=host, redis="redis://127.0.0.1:%d/0" % port, binary=BINARY)
    assert res["failed"]
    assert res["msg"].startswith("redis: cannot reach Redis at 127.0.0.1:%d: Connection refused" % port)
    assert not_running(host)


def test_with_its_password_the_agent_starts_and_heartbeats(
    run: ModuleRunner,
    managers: Callable[..., ManagerProcess],
    locked_redis: RedisServer,
    tag: str,
    tmp_path: Any,
) -> None:
    mgr = managers()
    args = agent_args(mgr.host, locked_redis, tmp_path, tag)
    try:
        res = run(scaler.main, **args)
        assert not res.get("failed") and res["changed"] and res["pid"]
        client = locked_redis.client()
        assert wait_until(lambda: mgr.host in global_view.view(client)["hosts"], 20)
        assert run(scaler.main, **args)["changed"] is False
    finally:
        run(scaler.main, host=mgr.host, state="stopped")
    assert not_running(mgr.host)


def test_a_new_build_restarts_the_agent_and_the_same_does_not(
    run: ModuleRunner,
    managers: Callable[..., ManagerProcess],
    locked_redis: RedisServer,
    tag: str,
    tmp_path: Any,
) -> None:
    """build_id is what the role installed (its wheels' digest): the same one
    leaves the running agent alone, a new one (new wheels, same path) restarts
    it, and check mode says so without restarting."""
    mgr = managers()
    args = {**agent_args(mgr.host, locked_redis, tmp_path, tag), "build_id": "build-a"}
    try:
        first = run(scaler.main, **args)
        assert not first.get("failed") and first["changed"], first
        again = run(scaler.main, **args)
        assert (again["changed"], again["pid"]) == (False, first["pid"])
        checked = run(scaler.main, check_mode=True, **{**args, "build_id": "build-b"})
        assert (checked["changed"], checked["pid"]) == (True, first["pid"])
        assert checked["diff"]["after"]["argv"]["build_id"] == "build-b"
        assert agent_pid(mgr.host) == first["pid"]
        new = run(scaler.main, **{**args, "build_id": "build-b"})
        assert new["changed"] and new["pid"] not in (None, first["pid"]), new
        assert run(scaler.main, **{**args, "build_id": "build-b"})["changed"] is False
    finally:
        run(scaler.main, host=mgr.host, state="stopped")
    assert not_running(mgr.host)
