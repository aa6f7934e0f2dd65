"""A throwaway redis-server on 127.0.0.1 for tests and benchmarks: no
persistence, stopped by whoever started it."""

from __future__ import annotations

import subprocess
from typing import Any

import redis

from onvm.lab.single_host import wait_until


class RedisServer:
    def __init__(self, port: int, password: str | None = None) -> None:
        self.port = port
        self.password = password
        self.url = "redis://127.0.0.1:%d/0" % port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = self.client()
        if not wait_until(lambda: _pings(client), 10):
            self.stop()
            raise RuntimeError("redis-server on port %d did not answer" % self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self) -> Any:
        return redis.Redis.from_url(self.url, password=self.password)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
