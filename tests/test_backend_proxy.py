"""The ``proxy`` target: one ProxyConfig holding the IR, checked against its schema, read back by
``ingest`` without changing a single decision, and hand-written configs imported with every
problem reported.

There is no vendor CRD for ``proxy.smi-bridge.io``: ``schemas/proxy-config.schema.json`` is the
contract, and every emitted object is validated against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from backends.base import Options, SourceObject
from backends.proxy import API_VERSION, CHECKS, KIND, ProxyBackend, validate_config
from smi_bridge import semantics
from smi_bridge.crdcheck import CRDIndex
from smi_bridge.diagnostics import Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    Endpoint,
    EndpointPort,
    Identity,
    Origin,
    Pod,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
    ir_from_dict,
    ir_to_dict,
)
from smi_bridge.load import load
from smi_bridge.probes import generate_requests
from smi_bridge.verify import ir_from_manifests, load_scenario
from tests.conftest import FIXTURES
from tests.strategies import irs

BACKEND = ProxyBackend()
SCENARIOS = sorted((FIXTURES / "scenarios").glob("*.yaml"))
IMPORTS = FIXTURES / "import" / "proxy"


def scenario_ir(path: Path) -> IR:
    from smi_bridge.build import build
    from smi_bridge.parse import parse_documents

    return build(parse_documents(load_scenario(path).documents).resources).ir


def sources_of(objects: Sequence[dict[str, Any]], file: str = "emitted.yaml") -> list[SourceObject]:
    out = []
    for i, obj in enumerate(objects):
        md = obj.get("metadata", {})
        origin = Origin(
            obj["kind"], md.get("namespace", ""), md.get("name", ""), obj["apiVersion"], file, i + 1
        )
        out.append(SourceObject(obj, origin))
    return out


def sources_from_file(path: Path) -> list[SourceObject]:
    loaded = load([path])
    out = []
    for doc in loaded.documents:
        md = doc.obj.get("metadata") or {}
        origin = Origin(
            str(doc.obj.get("kind", "")),
            str(md.get("namespace", "")),
            str(md.get("name", "")),
            str(doc.obj.get("apiVersion", "")),
            doc.file,
            doc.line,
        )
        out.append(SourceObject(doc.obj, origin))
    return out


def inventory_of(ir: IR) -> IR:
    return IR(services=ir.services, pods=ir.pods)


def decisions(
    ir: IR, requests: Sequence[semantics.Request], mode: semantics.AccessMode = "enforce"
) -> list[object]:
    """What each request gets (reasons aside: they name the object that decided, not the outcome)."""
    router = semantics.compile(ir, access_mode=mode)
    out = []
    for request in requests:
        d = router.decide(request)
        out.append((d.split, d.route, tuple((b.service, b.weight, b.allowed) for b in d.backends)))
    return out


def codes(report: Report | Sequence[Any]) -> list[str]:
    return [d.code for d in report]


# --- emit ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_emitted_config_of_every_scenario_validates_against_the_schema(path: Path) -> None:
    emission = BACKEND.emit(scenario_ir(path), Options())
    assert [(o["apiVersion"], o["kind"]) for o in emission.objects] == [(API_VERSION, KIND)]
    assert validate_config(emission.objects[0]) == []


def test_the_config_is_one_cluster_scoped_object_carrying_the_ir_and_options(vendor_crds: CRDIndex) -> None:
    ir = scenario_ir(FIXTURES / "scenarios" / "split-with-access.yaml")
    options = Options(trust_domain="example.org", cluster_domain="corp.local", access_mode="permissive")
    (obj,) = BACKEND.emit(ir, options).objects
    assert "namespace" not in obj["metadata"] and obj["metadata"]["name"] == "smi-proxy"
    assert obj["metadata"]["annotations"]["smi-bridge.io/generator"].startswith("smi-bridge-")
    assert "TrafficSplit/shop/checkout-canary" in obj["metadata"]["annotations"]["smi-bridge.io/source"]
    spec = obj["spec"]
    assert (spec["accessMode"], spec["trustDomain"], spec["clusterDomain"]) == (
        "permissive",
        "example.org",
        "corp.local",
    )
    assert ir_from_dict(spec["ir"]) == ir
    # No vendor publishes a CRD for this kind; the schema above is its contract.
    assert not vendor_crds.has(API_VERSION, KIND)


def test_every_split_backend_target_and_rule_is_consumed() -> None:
    for path in SCENARIOS:
        ir = scenario_ir(path)
        emission = BACKEND.emit(ir, Options())
        assert set(ir.consumable()) <= emission.consumed, path.name


def test_emission_is_deterministic() -> None:
    ir = scenario_ir(FIXTURES / "scenarios" / "split-header-ab.yaml")
    assert BACKEND.emit(ir, Options()).objects == BACKEND.emit(ir, Options()).objects


def _svc(
    name: str, ip: str = "127.0.1.1", ports: tuple[ServicePort, ...] = (ServicePort(80, "http"),)
) -> Service:
    return Service(
        "shop",
        name,
        cluster_ip=ip,
        ports=ports,
        selector=(("app", name),),
        service_accounts=(name,),
        endpoints=(Endpoint("127.0.10.1", (EndpointPort(80, "http"),), f"{name}-0", name),),
    )


def test_all_zero_split_is_refused_with_an_error_and_left_out() -> None:
    zero = Split("shop", "dead", "web", (SplitBackend("web-v1", 0), SplitBackend("web-v2", 0)))
    ir = IR(services=(_svc("web"), _svc("web-v1", "127.0.1.2"), _svc("web-v2", "127.0.1.3")), splits=(zero,))
    emission = BACKEND.emit(ir, Options())
    errors = [d for d in emission.diagnostics if d.code == "SMT501"]
    assert errors and errors[0].severity is Severity.ERROR and "shop/dead" in errors[0].message
    assert emission.objects[0]["spec"]["ir"]["splits"] == []
    assert zero in emission.consumed
    # Left out or not, the meaning is the same: the root gets everything.
    requests = generate_requests(ir)
    assert decisions(ir_from_dict(emission.objects[0]["spec"]["ir"]), requests) == decisions(ir, requests)


def test_what_the_data_plane_cannot_do_is_reported() -> None:
    named_port = Service(
        "shop",
        "named",
        cluster_ip="127.0.1.7",
        ports=(ServicePort(80, "http", target_port="web"),),
        endpoints=(Endpoint("127.0.10.7", (EndpointPort(8080, "other"),), "named-0", "named"),),
    )
    ir = IR(
        services=(
            _svc("web"),
            _svc("headless", ip=""),
            Service("shop", "empty", cluster_ip="127.0.1.4", ports=(ServicePort(80, "http"),)),
            _svc("dns", "127.0.1.5", (ServicePort(53, "dns", protocol="UDP"),)),
            _svc("twin", "127.0.1.1"),
            named_port,
        ),
        pods=(Pod("shop", "client-0", service_account="client"),),
        splits=(Split("shop", "web", "web", (SplitBackend("headless", 1),)),),
        targets=(
            TrafficTarget(
                "shop",
                "udp",
                Identity("shop", "dns"),
                (Identity("shop", "client"),),
                (AccessRule("udp", "dns", ports=(53,)),),
            ),
        ),
    )
    found = {(d.code, d.severity) for d in BACKEND.emit(ir, Options()).diagnostics}
    assert ("SMT502", Severity.WARNING) in found  # headless is a split backend: it matters
    assert ("SMT503", Severity.INFO) in found  # "empty" is named by no policy
    assert ("SMT504", Severity.WARNING) in found
    assert ("SMT505", Severity.WARNING) in found
    assert ("SMT506", Severity.WARNING) in found
    assert ("SMT507", Severity.INFO) in found
    assert ("SMT508", Severity.WARNING) in found


def test_every_code_is_declared_once_in_the_proxy_range() -> None:
    declared = [c.code for c in CHECKS]
    assert len(declared) == len(set(declared))
    assert all(c.startswith(("SMT5", "SMX5")) for c in declared)


# --- the IR codec and the round trip -------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(irs())
def test_ir_codec_round_trips(ir: IR) -> None:
    assert ir_from_dict(ir_to_dict(ir)) == ir


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs())
def test_emitted_config_of_random_irs_validates_and_ingests_to_the_same_decisions(ir: IR) -> None:
    emission = BACKEND.emit(ir, Options())
    (obj,) = emission.objects
    assert validate_config(obj) == []
    back, report = BACKEND.ingest(sources_of(emission.objects), inventory_of(ir), Options())
    roots = [(s.namespace, s.root) for s in ir.splits]
    # Two splits on one root are a conflict in the IR itself; the importer says which applies.
    expected = {"SMX506"} if len(roots) != len(set(roots)) else set()
    assert {d.code for d in report if d.severity >= Severity.WARNING} <= expected
    requests = generate_requests(ir, max_requests=400)
    assert decisions(back, requests) == decisions(ir, requests)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_emit_then_ingest_keeps_every_decision_of_every_scenario(path: Path) -> None:
    ir = scenario_ir(path)
    emission = BACKEND.emit(ir, Options())
    back, report = BACKEND.ingest(sources_of(emission.objects), inventory_of(ir), Options())
    assert [d for d in report if d.severity >= Severity.WARNING] == []
    requests = generate_requests(ir)
    for mode in ("enforce", "permissive"):
        assert decisions(back, requests, mode) == decisions(ir, requests, mode)
    # Origins now point at the ProxyConfig fields the nodes were read from.
    if back.splits:
        assert back.splits[0].origin.kind == KIND and back.splits[0].origin.path == "spec.ir.splits[0]"
        assert back.splits[0].backends[1].origin.path == "spec.ir.splits[0].backends[1]"


# --- ingest of hand-written configs ---------------------------------------------------------------------


def test_handwritten_config_is_read_and_normalised() -> None:
    ir, report = BACKEND.ingest(sources_from_file(IMPORTS / "handwritten.yaml"), IR(), Options())
    assert [s.name for s in ir.services] == ["checkout", "checkout-v1", "checkout-v2"]
    read = ir.route_groups[0].matches[0]
    assert read.methods == ("GET", "HEAD")
    assert ir.route_groups[0].matches[1].headers[0].name == "x-user"
    assert "SMX507" in codes(report)
    normalised = next(d for d in report if d.code == "SMX507")
    assert (
        normalised.file
        and normalised.file.endswith("handwritten.yaml")
        and normalised.path.startswith("spec.ir.")
    )
    router = semantics.compile(ir)
    web = Identity("shop", "web")
    allowed = router.decide(semantics.Request(web, "shop", "checkout", 8080, "http", "GET", "/api/books"))
    assert allowed.split == "checkout-canary" and [b.weight for b in allowed.backends] == [9, 1]
    assert all(b.allowed for b in allowed.backends)
    denied = router.decide(semantics.Request(web, "shop", "checkout", 8080, "http", "POST", "/api/books"))
    assert not any(b.allowed for b in denied.backends)


def test_fields_the_ir_cannot_hold_are_reported_by_path_and_left_out() -> None:
    ir, report = BACKEND.ingest(sources_from_file(IMPORTS / "unknown-fields.yaml"), IR(), Options())
    unknown = sorted(d.path for d in report if d.code == "SMX503")
    assert unknown == [
        "spec.ir.services[0].sessionAffinity",
        "spec.ir.splits[0].backends[0].timeout",
        "spec.retries",
    ]
    assert all(
        d.severity is Severity.WARNING and d.resource.kind == KIND for d in report if d.code == "SMX503"
    )
    assert [b.weight for b in ir.splits[0].backends] == [1, 1]


def test_conflicts_are_reported_with_both_locations_and_the_proxys_choice_is_kept() -> None:
    ir, report = BACKEND.ingest(sources_from_file(IMPORTS / "conflicts.yaml"), IR(), Options())
    by_code = {d.code: d for d in report}
    second = by_code["SMX501"]
    assert "conflicts.yaml:3" in second.message and "conflicts.yaml:2" in second.message
    assert second.resource.name == "smi-proxy-old"
    assert "SMX505" in by_code and "spec.ir.services[0]" in by_code["SMX505"].message
    assert [s.cluster_ip for s in ir.services] == ["127.0.1.1"]
    conflict = by_code["SMX506"]
    assert "aa-first applies" in conflict.message and "zz-late" in conflict.message
    assert by_code["SMX500"].severity is Severity.INFO and "ConfigMap" in by_code["SMX500"].message
    assert "SMX504" in by_code  # accessMode permissive differs from the enforce option
    decided = semantics.compile(ir).decide(semantics.Request(None, "shop", "checkout", 8080))
    assert decided.split == "aa-first"


def test_an_invalid_config_is_an_error_naming_each_field_and_nothing_is_imported() -> None:
    inventory = IR(services=(_svc("web"),))
    ir, report = BACKEND.ingest(sources_from_file(IMPORTS / "invalid.yaml"), inventory, Options())
    errors = [d for d in report if d.code == "SMX502"]
    assert {d.path for d in errors} == {
        "spec.ir.services[0].ports[0].port",
        "spec.ir.splits[0].backends[0].weight",
    }
    assert all(d.severity is Severity.ERROR and d.file and d.file.endswith("invalid.yaml") for d in errors)
    assert ir == inventory


def test_inventory_services_the_config_lacks_are_added() -> None:
    config_ir = ir_from_manifests(
        (FIXTURES / "scenarios" / "access-headers.yaml").read_text().split("---\n", 1)[1]
    )
    emission = BACKEND.emit(config_ir, Options())
    extra = _svc("extra", "127.0.1.99")
    ir, report = BACKEND.ingest(
        sources_of(emission.objects), IR(services=(*config_ir.services, extra)), Options()
    )
    assert ir.service("shop", "extra") == extra
    assert [d for d in report if d.severity >= Severity.WARNING] == []
