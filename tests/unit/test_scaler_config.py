"""onvm.scaler.config: the scaler's per-host JSON configuration (pure)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import ServiceConf
from onvm.scaler.config import ConfigError, Policy, ScalerConfig, Service, load, parse


def good() -> dict[str, Any]:
    return {
        "host": "lab1",
        "cpus": 4,
        "fabric": {"lab2": "port1", "lab3": "port2"},
        "services": {
            "fw": {
                "image": "onvm/firewall:0.1.0",
                "args": ["--rules", 3],
                "files": {"/etc/r": "/etc/onvm/fw.rules"},
                "cores": [2, "3"],
                "shared_core": True,
                "min": 1,
                "max": 3,
            },
            "slow": {"image": "onvm/slow:0.1.0"},
        },
        "policy": {"high": 0.8, "low": 0.2, "window": 1.0, "in_window": 10},
    }


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as e:
        parse(data)
    return str(e.value)


# ---- good configurations ------------------------------------------------------


def test_a_full_configuration_is_parsed() -> None:
    c = parse(good())
    assert c.host == "lab1"
    assert c.cpus == 4
    assert c.fabric == {"lab2": "port1", "lab3": "port2"}
    fw = c.services["fw"]
    assert (fw.min, fw.max) == (1, 3)
    assert fw.conf == ServiceConf(
        image="onvm/firewall:0.1.0",
        args=["--rules", "3"],
        files={"/etc/r": "/etc/onvm/fw.rules"},
        cores=[2, 3],
        shared_core=True,
    )
    assert c.policy.high == 0.8 and c.policy.low == 0.2
    assert c.policy.window == 1.0 and c.policy.in_window == 10
    # the keys it did not give keep their defaults
    assert c.policy.cooldown == Policy().cooldown
    assert c.policy.drain_bound == Policy().drain_bound
    assert c.policy.queue_timeout == Policy().queue_timeout


def test_a_minimal_configuration_gets_the_defaults() -> None:
    c = parse({"host": "lab1"})
    assert c == ScalerConfig(host="lab1")
    assert c.services == {} and c.fabric == {} and c.cpus == 0
    assert c.policy == Policy()
    assert Policy().errors() == []


def test_null_sections_are_the_same_as_absent_ones() -> None:
    c = parse({"host": "lab1", "services": None, "fabric": None, "policy": None})
    assert c == ScalerConfig(host="lab1")


def test_a_service_without_limits_has_one_instance() -> None:
    s = parse(good()).services["slow"]
    assert s == Service(ServiceConf(image="onvm/slow:0.1.0"), 1, 1)
    assert s.conf.cores == [] and s.conf.args == [] and s.conf.shared_core is False


def test_max_defaults_to_min() -> None:
    s = parse({"host": "h", "services": {"fw": {"image": "i", "min": 3}}}).services["fw"]
    assert (s.min, s.max) == (3, 3)


@pytest.mark.parametrize(("lo", "hi"), [(0, 0), (0, 5), (2, 2), (1, 8)])
def test_any_min_up_to_max_is_accepted(lo: int, hi: int) -> None:
    s = parse({"host": "h", "services": {"fw": {"image": "i", "min": lo, "max": hi}}}).services["fw"]
    assert (s.min, s.max) == (lo, hi)


@pytest.mark.parametrize("cpus", [0, 1, 64, 4096])
def test_cpus_in_range_is_accepted(cpus: int) -> None:
    assert parse({"host": "h", "cpus": cpus}).cpus == cpus


@pytest.mark.parametrize(
    "policy",
    [
        {"low": 0.1, "high": 1.0},
        {"window": 0, "in_window": 3600, "cooldown": 0, "drain_bound": 3600, "queue_timeout": 0.5},
    ],
)
def test_policy_at_its_bounds_is_accepted(policy: dict[str, Any]) -> None:
    p = parse({"host": "h", "policy": policy}).policy
    for k, v in policy.items():
        assert getattr(p, k) == v


# ---- refusals: each names its problem -----------------------------------------


def test_min_above_max_is_refused() -> None:
    msg = refused({"host": "h", "services": {"fw": {"image": "i", "min": 3, "max": 2}}})
    assert "services.fw" in msg and "min <= max" in msg and "3, 2" in msg


def test_negative_min_is_refused() -> None:
    msg = refused({"host": "h", "services": {"fw": {"image": "i", "min": -1, "max": 2}}})
    assert "services.fw" in msg and "0 <= min" in msg


def test_a_service_without_an_image_is_refused() -> None:
    msg = refused({"host": "h", "services": {"fw": {"min": 1}}})
    assert "services.fw" in msg and "image" in msg


@pytest.mark.parametrize("field", ["min", "max"])
def test_a_count_that_is_not_a_number_is_refused(field: str) -> None:
    msg = refused({"host": "h", "services": {"fw": {"image": "i", field: "many"}}})
    assert "services.fw" in msg and "many" in msg


def test_a_core_that_is_not_a_number_is_refused() -> None:
    msg = refused({"host": "h", "services": {"fw": {"image": "i", "cores": ["x"]}}})
    assert "services.fw" in msg


def test_a_service_that_is_not_a_mapping_is_refused() -> None:
    assert "services.fw" in refused({"host": "h", "services": {"fw": "onvm/firewall"}})


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.5, 0.5), (0.6, 0.5), (0.0, 0.5), (-0.1, 0.5), (0.3, 1.01), (0.3, 2.0)],
)
def test_thresholds_out_of_order_or_range_are_refused(low: float, high: float) -> None:
    msg = refused({"host": "h", "policy": {"low": low, "high": high}})
    assert "0 < low < high <= 1" in msg
    assert "low %s, high %s" % (low, high) in msg


def test_policy_errors_is_the_check_parse_uses() -> None:
    assert Policy(low=0.5, high=0.5).errors() == ["policy: need 0 < low < high <= 1 (got low 0.5, high 0.5)"]
    assert Policy(window=-1).errors() == ["policy: window must be 0-3600 seconds"]
    assert len(Policy(low=0.9, high=0.3, cooldown=3601, queue_timeout=-1).errors()) == 3


def test_an_unknown_policy_key_is_refused() -> None:
    msg = refused({"host": "h", "policy": {"hihg": 0.9}})
    assert msg.startswith("policy:") and "hihg" in msg


@pytest.mark.parametrize("key", ["window", "in_window", "cooldown", "drain_bound", "queue_timeout"])
@pytest.mark.parametrize("value", [-0.001, 3600.5, float("nan")])
def test_a_duration_out_of_range_is_refused(key: str, value: float) -> None:
    msg = refused({"host": "h", "policy": {key: value}})
    assert msg == "policy: %s must be 0-3600 seconds" % key


@pytest.mark.parametrize("cpus", ["4", 4.0, 1.5, None, [4], -1, 4097, True, False])
def test_cpus_must_be_a_whole_number_in_range(cpus: Any) -> None:
    msg = refused({"host": "h", "cpus": cpus})
    assert msg.startswith("cpus:") and "whole number" in msg


@pytest.mark.parametrize("data", [{}, {"host": ""}, {"host": None}])
def test_a_missing_host_is_refused(data: dict[str, Any]) -> None:
    assert refused(data) == "host: missing"


def test_every_problem_is_listed_at_once() -> None:
    msg = refused(
        {
            "services": {
                "a": {"image": "i", "min": 3, "max": 1},
                "b": {"min": 1},
                "c": {"image": "i", "min": -2},
            },
            "policy": {"low": 0.9, "high": 0.5, "window": 9999},
            "cpus": "all",
        }
    )
    parts = msg.split("; ")
    assert len(parts) == 7, parts
    for needle in ("services.a", "services.b", "services.c", "low < high", "window", "host: missing", "cpus"):
        assert sum(needle in p for p in parts) == 1, (needle, parts)


def test_an_unknown_policy_key_is_listed_with_the_other_problems() -> None:
    msg = refused({"policy": {"nope": 1}, "cpus": -1})
    assert "nope" in msg and "host: missing" in msg and "cpus" in msg


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ---- load(path) ----------------------------------------------------------------


def test_load_reads_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(good()), encoding="utf-8")
    assert load(str(path)) == parse(good())


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError) as e:
        load(path)
    assert path in str(e.value) and "No such file" in str(e.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_load_names_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps(good()), encoding="utf-8")
    path.chmod(0)
    with pytest.raises(ConfigError) as e:
        load(str(path))
    assert str(path) in str(e.value) and "Permission denied" in str(e.value)


def test_load_names_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load(str(tmp_path))
    assert str(tmp_path) in str(e.value)


def test_load_names_a_path_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("{}", encoding="utf-8")
    path = str(tmp_path / "f" / "scaler.json")
    with pytest.raises(ConfigError) as e:
        load(path)
    assert path in str(e.value) and "Not a directory" in str(e.value)


@pytest.mark.parametrize("text", ["", "{", '{"host": "h",}', "host: h"])
def test_load_refuses_invalid_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scaler.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load(str(path))
    assert str(path) in str(e.value)


def test_load_passes_on_what_parse_refuses(tmp_path: Path) -> None:
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps({"cpus": -1}), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load(str(path))
    assert "host: missing" in str(e.value) and "cpus" in str(e.value)


# ---- bugs: malformed input escapes as something other than ConfigError ------------
# The CLI only turns ConfigError into a usage error (exit 2); anything else is a traceback.


@pytest.mark.parametrize("text", ["[]", '"lab1"', "3"])
def test_load_refuses_json_that_is_not_an_object(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scaler.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load(str(path))


@pytest.mark.parametrize("policy", [{"high": "0.9"}, {"window": None}, {"cooldown": "5s"}])
def test_a_policy_value_that_is_not_a_number_is_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse({"host": "h", "policy": policy})


def test_load_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "scaler.json"
    path.write_bytes(b'{"host": "\xff"}')
    with pytest.raises(ConfigError):
        load(str(path))


def test_services_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(ConfigError):
        parse({"host": "h", "services": ["fw"]})


def test_chains_are_kept_normalised_for_a_restarted_manager() -> None:
    data = good()
    data["chains"] = {"web": {"services": ["fw"], "match": {"in_port": "port0", "proto": 17}, "egress": 1}}
    cfg = parse(data)
    assert cfg.chains == {
        "web": {
            "services": ["fw"],
            "match": {"in_port": 0, "proto": "udp"},
            "egress": "port1",
            "ingress": True,
        }
    }
    assert parse(good()).chains == {}


@pytest.mark.parametrize(
    ("chains", "message"),
    [
        (["web"], "chains: must map chain names to chains"),
        ({"web": {"services": []}}, "chains: chain web: services must be a non-empty list"),
        ({"web": {"services": ["fw"], "colour": 1}}, "chains: chain web: unknown key(s) colour"),
    ],
)
def test_malformed_chains_are_refused(chains: Any, message: str) -> None:
    data = good()
    data["chains"] = chains
    assert message in refused(data)


def test_what_the_role_writes_is_what_the_daemon_reads() -> None:
    """onvm.nfv.onvm_scaler writes filter onvm.nfv.scaler_config's output; the
    daemon parses it: services, fabric and this host's chains survive."""
    from ansible_collections.onvm.nfv.plugins.module_utils.config import scaler_config

    services = {"fw": {"image": "onvm/firewall:0.1.0", "instances": 1, "max_instances": 2}}
    chains = {
        "web": {"services": ["fw"], "match": {"in_port": "port0"}, "egress": "port1", "ingress_host": "lab1"}
    }
    written = json.loads(
        json.dumps(scaler_config("lab2", services, {"lab1": "f-lab1"}, 2, {"window": 1.0}, 2, chains))
    )
    cfg = parse(written)
    assert (cfg.host, cfg.cpus, cfg.fabric) == ("lab2", 2, {"lab1": "port2"})
    assert (cfg.services["fw"].min, cfg.services["fw"].max) == (1, 2)
    # classified into only on its ingress host: lab2 gets it by NSH
    assert cfg.chains["web"]["ingress"] is False and cfg.chains["web"]["match"] == {"in_port": 0}


def test_the_cluster_minimum_sums_every_hosts_instances() -> None:
    """The role passes every inventory host's services: a service's cluster
    minimum is what the scalers keep when a host is lost."""
    from ansible_collections.onvm.nfv.plugins.module_utils.config import scaler_config

    cluster = {
        "lab1": {"slow": {"image": "onvm/slow:0.1.0", "instances": 0}},
        "lab2": {"slow": {"image": "onvm/slow:0.1.0"}, "ids": {"image": "onvm/forward:0.1.0"}},
        "lab3": {"slow": {"image": "onvm/slow:0.1.0", "instances": 1}},
    }
    cfg = parse(json.loads(json.dumps(scaler_config("lab2", cluster["lab2"], {}, 2, cluster=cluster))))
    assert cfg.cluster_min == {"ids": 1, "slow": 2}


def test_without_a_cluster_minimum_the_hosts_own_is_kept() -> None:
    data = good()
    data.pop("cluster_min", None)
    cfg = parse(data)
    assert cfg.cluster_min == {n: s.min for n, s in cfg.services.items()}


@pytest.mark.parametrize("bad", [[1], {"slow": -1}, {"slow": "2"}, {"slow": True}, {"slow": 5000}])
def test_a_malformed_cluster_minimum_is_refused(bad: Any) -> None:
    data = good()
    data["cluster_min"] = bad
    assert "cluster_min: must map service names to whole numbers 0-4096" in refused(data)


def test_min_instances_is_the_scalers_floor_here_and_in_the_cluster_minimum() -> None:
    """deploy.yml starts ``instances``; the scaler may drain them down to
    ``min_instances`` (default: ``instances``), and the cluster minimum kept
    when a host is lost sums those floors."""
    from ansible_collections.onvm.nfv.plugins.module_utils.config import config_errors, scaler_config

    cluster = {
        "lab1": {
            "slow": {"image": "onvm/slow:0.1.0", "instances": 2, "min_instances": 1, "max_instances": 3}
        },
        "lab2": {"slow": {"image": "onvm/slow:0.1.0", "instances": 2}},
    }
    assert config_errors(cluster["lab1"], {}) == []
    lab1 = parse(json.loads(json.dumps(scaler_config("lab1", cluster["lab1"], {}, 2, cluster=cluster))))
    lab2 = parse(json.loads(json.dumps(scaler_config("lab2", cluster["lab2"], {}, 2, cluster=cluster))))
    assert (lab1.services["slow"].min, lab1.services["slow"].max) == (1, 3)
    assert (lab2.services["slow"].min, lab2.services["slow"].max) == (2, 2)
    assert lab1.cluster_min == lab2.cluster_min == {"slow": 3}
