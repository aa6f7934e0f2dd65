"""onvm-scaler's command line: what it refuses before it starts anything
(the agent loop is never started here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onvm.scaler import agent
from onvm.scaler.agent import main


@pytest.fixture(autouse=True)
def no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a refusal ever fail to happen, fail the test instead of serving."""

    class Refused:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("the agent was started")

    monkeypatch.setattr(agent, "Agent", Refused)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: onvm-scaler")
    return err.splitlines()[-1]


def config_file(tmp_path: Path, data: object) -> str:
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_help_exits_0_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out, _ = capsys.readouterr()
    assert out.startswith("usage: onvm-scaler")
    for opt in ("--host", "--redis", "--interval", "--stats-file", "--config"):
        assert opt in out


def test_the_host_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--host" in refused([], capsys)


@pytest.mark.parametrize("host", ["bad name!", "", "a" * 32, "lab/1"])
def test_a_bad_host_name_is_refused(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    msg = refused(["--host", host], capsys)
    assert "--host" in msg and "[A-Za-z0-9_.-]" in msg


@pytest.mark.parametrize("interval", ["0.01", "0", "-1", "1.5", "60", "nan", "inf"])
def test_an_interval_out_of_range_is_refused(interval: str, capsys: pytest.CaptureFixture[str]) -> None:
    msg = refused(["--host", "lab1", "--interval", interval], capsys)
    assert "--interval must be at least 0.05 s" in msg


def test_an_interval_that_is_not_a_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    msg = refused(["--host", "lab1", "--interval", "fast"], capsys)
    assert "--interval" in msg and "fast" in msg


def test_a_config_that_is_not_there_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "nope.json")
    msg = refused(["--host", "lab1", "--config", path], capsys)
    assert msg.startswith("onvm-scaler: error: --config: ") and path in msg


def test_a_config_that_is_not_json_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scaler.json"
    path.write_text("{host: lab1", encoding="utf-8")
    msg = refused(["--host", "lab1", "--config", str(path)], capsys)
    assert "--config: " in msg and str(path) in msg


def test_a_config_that_does_not_parse_lists_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(
        tmp_path,
        {"host": "lab1", "services": {"fw": {"image": "i", "min": 2, "max": 1}}, "policy": {"high": 2}},
    )
    msg = refused(["--host", "lab1", "--config", path], capsys)
    assert "--config: " in msg and "services.fw" in msg and "low < high <= 1" in msg


def test_a_config_for_another_host_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, {"host": "lab2", "services": {"fw": {"image": "i"}}})
    msg = refused(["--host", "lab1", "--config", path], capsys)
    assert "--config is for host lab2, not lab1" in msg


def test_the_host_is_checked_before_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = refused(["--host", "bad name!", "--config", str(tmp_path / "nope.json")], capsys)
    assert "--host" in msg and "nope.json" not in msg


def test_a_config_that_is_a_json_array_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = refused(["--host", "lab1", "--config", config_file(tmp_path, ["lab1"])], capsys)
    assert "--config: " in msg


def test_a_password_file_that_cannot_be_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "nope.pass")
    msg = refused(["--host", "lab1", "--redis-password-file", path], capsys)
    assert msg == "onvm-scaler: error: --redis-password-file: cannot read %s" % path
