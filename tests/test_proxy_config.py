"""Loading and compiling a ProxyConfig: clear errors for bad files, the lookup tables, the cache."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.base import Options
from backends.proxy import ProxyBackend
from proxy.config import SCHEMA_PATH, ConfigError, compile_config, load_config, parse_config_text
from proxy.schema import UnsupportedSchema, compile_schema
from smi_bridge.ir import IR, Identity
from smi_bridge.verify import ir_from_manifests
from tests.proxybed import documents, http_route_group, pod, service, traffic_target
from tests.strategies import irs

MANIFESTS = documents(
    service("shop-web", "127.0.1.5", {"app": "web"}, [("http", 80, 8080), ("tcp-debug", 9000, 9000)]),
    service("headless", "None", {"app": "web"}, [("http", 80)]),
    pod("web-0", "127.0.10.5", {"app": "web"}, replicaset="web-6d8f9c7b5"),
    pod("client-0", "127.0.10.6", {"app": "client"}),
    http_route_group("routes", '{name: canary, headers: [{x-canary: "yes"}]}'),
    traffic_target("client-to-web", "web", {"kind": "HTTPRouteGroup", "name": "routes"}, source="client"),
)


def config_text() -> str:
    ir = ir_from_manifests(MANIFESTS)
    emission = ProxyBackend().emit(ir, Options())
    return str(yaml.safe_dump_all(emission.objects, sort_keys=False))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(config_text())
    return path


def test_a_valid_config_compiles_into_lookup_tables(config_file: Path) -> None:
    cfg = load_config(config_file, "1")
    assert cfg.version == "1" and cfg.digest.startswith("sha256:")
    web = cfg.listeners[("127.0.1.5", 80)]
    assert (web.namespace, web.service, web.port, web.http) == ("shop", "shop-web", 80, True)
    assert cfg.listeners[("127.0.1.5", 9000)].http is False
    assert cfg.sources_by_ip["127.0.10.6"] == (Identity("shop", "client"), "client-0")
    assert cfg.pod_workloads[("shop", "web-0")] == "web"
    upstream = cfg.rings[("shop", "shop-web", 80)].endpoints[0]
    assert (upstream.host, upstream.port, upstream.pod, upstream.workload) == (
        "127.0.10.5",
        8080,
        "web-0",
        "web",
    )
    assert cfg.header_names == frozenset({"x-canary"})


def test_headless_service_gets_no_listener_and_a_note(config_file: Path) -> None:
    cfg = load_config(config_file, "1")
    assert all(t.service != "headless" for t in cfg.listeners.values())
    assert any("headless has no clusterIP" in note for note in cfg.notes)


@pytest.mark.parametrize(
    ("host", "client_ns", "expected"),
    [
        ("shop-web.shop", "", ("shop", "shop-web", None)),
        ("shop-web.shop.svc", "", ("shop", "shop-web", None)),
        ("shop-web.shop.svc.cluster.local", "", ("shop", "shop-web", None)),
        ("SHOP-WEB.Shop.svc.cluster.local.", "", ("shop", "shop-web", None)),
        ("shop-web.shop:80", "", ("shop", "shop-web", 80)),
        ("shop-web", "shop", ("shop", "shop-web", None)),
        ("shop-web", "", None),
        ("shop-web", "other", None),
        ("shop-web.shop..", "", None),
        ("nothing.shop", "", None),
        ("shop-web.shop:99999", "", None),
        ("user@shop-web.shop", "", None),
    ],
)
def test_host_names_resolve_like_cluster_dns(
    config_file: Path, host: str, client_ns: str, expected: tuple[str, str, int | None] | None
) -> None:
    cfg = load_config(config_file, "1")
    assert cfg.resolve_host(host, client_ns) == expected


def test_decisions_are_cached_per_request_and_keep_their_meaning(config_file: Path) -> None:
    cfg = load_config(config_file, "1")
    client = Identity("shop", "client")
    allowed = cfg.decide(client, "shop", "shop-web", 80, "http", "GET", "/", (("x-canary", "yes"),))
    denied = cfg.decide(client, "shop", "shop-web", 80, "http", "GET", "/", ())
    assert allowed.decision.backends[0].allowed is True
    assert denied.decision.backends[0].allowed is False
    again = cfg.decide(client, "shop", "shop-web", 80, "http", "GET", "/", (("x-canary", "yes"),))
    assert again is allowed
    stranger = cfg.decide(
        Identity("shop", "web"), "shop", "shop-web", 80, "http", "GET", "/", (("x-canary", "yes"),)
    )
    assert stranger.decision.backends[0].allowed is False


def test_schema_error_names_file_line_object_and_field(tmp_path: Path) -> None:
    text = config_text().replace("port: 80\n", "port: -80\n", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, "1")
    problem = info.value.problems[0]
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "port: -80" in row)
    assert problem.startswith(f"{path}:{line}: ProxyConfig smi-proxy: spec.ir.services[0].ports[0].port:")
    assert "-80" in problem


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: proxy.smi-bridge.io/v1alpha1\nkind: ProxyConfig\nspec: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, "1")
    assert info.value.problems[0].startswith(f"{path}:")
    assert "not valid YAML" in info.value.problems[0]


def test_two_proxy_configs_in_one_file_are_refused() -> None:
    text = config_text()
    with pytest.raises(ConfigError, match="2 ProxyConfig objects"):
        parse_config_text(text + "---\n" + text, "two.yaml")


def test_a_file_without_proxy_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="no ProxyConfig"):
        parse_config_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "svc.yaml")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", "1")


def test_config_inside_a_list_is_read() -> None:
    obj = yaml.safe_load(config_text())
    listed = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [obj]})
    cfg = compile_config(parse_config_text(listed, "list.yaml"), version="3")
    assert cfg.version == "3"


# --- the compiled schema check agrees with jsonschema -------------------------------------------------

_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(["", "x", "GET", "tcp", "None"])
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["a", "name"]), inner, max_size=2)
    ),
    max_leaves=4,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(irs(max_namespaces=2), st.data())
def test_fast_schema_check_agrees_with_jsonschema(ir: IR, data: st.DataObject) -> None:
    (obj,) = ProxyBackend().emit(ir, Options()).objects
    fast = compile_schema(json.loads(SCHEMA_PATH.read_text()))
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    assert fast(obj) and validator.is_valid(obj)
    mutated = copy.deepcopy(obj)
    path = data.draw(st.sampled_from(_paths(mutated)[1:]))
    parent: Any = mutated
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["extra", path[-1]]))] = data.draw(_JSON_VALUES)
    else:
        parent[path[-1]] = data.draw(_JSON_VALUES)
    assert fast(mutated) == validator.is_valid(mutated)


def test_fast_schema_check_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(UnsupportedSchema, match="uniqueItems"):
        compile_schema({"type": "array", "uniqueItems": True})
