"""Migrations end to end as library calls: every source to every target on the bundled bookstore, the
equivalence check and exit codes, bad input (conflicts, unknown kinds, broken files) and the plan."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
import yaml

from backends import REGISTRY
from backends.base import Options
from smi_bridge.diagnostics import Severity
from smi_bridge.equivalence import compare, equivalence_requests
from smi_bridge.lint.engine import lint
from smi_bridge.migrate import SMI, Migration, emit_target, import_mesh, migrate, read_source
from smi_bridge.plan import ACCESS_FILE, ROUTING_FILE, stage_of
from tests.conftest import FIXTURES, REPO

MIGRATE = FIXTURES / "migrate"
ISTIO = MIGRATE / "istio-bookstore"
SMI_BOOKSTORE = MIGRATE / "smi-bookstore"
CONFLICTS = MIGRATE / "conflicts"


def codes(diagnostics: object) -> set[str]:
    return {d.code for d in diagnostics}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def istio_to_linkerd() -> Migration:
    return migrate("istio", "linkerd", [ISTIO], Options())


@pytest.fixture(scope="module")
def smi_to_gateway() -> Migration:
    return migrate(SMI, "gateway-api", [SMI_BOOKSTORE], Options())


@pytest.fixture(scope="module")
def mesh_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The SMI bookstore written as each mesh's own config (a realistic input for each importer)."""
    smi = read_source(SMI, [SMI_BOOKSTORE], Options())
    out: dict[str, Path] = {}
    for mesh in REGISTRY:
        directory = tmp_path_factory.mktemp(mesh)
        objects = emit_target(smi.ir, mesh, Options()).objects
        (directory / "mesh.yaml").write_text(yaml.safe_dump_all(objects), encoding="utf-8")
        out[mesh] = directory
    return out


# --- the worked examples ---------------------------------------------------------------------------------


def test_istio_to_linkerd_reads_every_policy_and_names_its_one_loss(istio_to_linkerd: Migration) -> None:
    m = istio_to_linkerd
    assert len(m.source.ir.splits) == 2 and len(m.source.ir.targets) == 3
    retries = [d for d in m.source.diagnostics if d.code == "SMX106"]
    assert retries and retries[0].file and retries[0].file.endswith("istio.yaml") and retries[0].line == 4
    eq = m.equivalence
    assert eq.requests > 500 and eq.groups and not eq.unexplained()
    assert {d.code for g in eq.groups for d in g.explained_by} == {"SMT230"}
    assert all(g.aspects == ("access",) and g.example.service == "mysql" for g in eq.groups)
    assert m.exit_code() == 1 and m.exit_code(accept_lossy=True) == 0


def test_smi_to_gateway_api_keeps_the_routing_and_reports_every_lost_target(
    smi_to_gateway: Migration,
) -> None:
    m = smi_to_gateway
    eq = m.equivalence
    assert eq.groups and not eq.unexplained()
    assert all(g.aspects == ("access",) for g in eq.groups)  # the splits carried over exactly
    lost = {d.resource.name for d in m.output.diagnostics if d.code == "SMT411"}
    assert lost == {"bookstore-from-bookbuyer", "bookwarehouse-from-bookstore", "mysql-from-bookwarehouse"}
    assert {o["kind"] for o in m.output.objects} == {"HTTPRoute"}


def test_smi_to_smi_at_the_newest_versions_is_exact() -> None:
    m = migrate(SMI, SMI, [SMI_BOOKSTORE], Options())
    assert m.equivalence.equivalent and m.equivalence.requests > 500 and m.exit_code() == 0


PAIRS = [(s, t) for s in REGISTRY for t in (SMI, *REGISTRY) if s != t]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_every_mesh_migrates_to_every_other_with_each_difference_named(
    source: str, target: str, mesh_inputs: dict[str, Path]
) -> None:
    m = migrate(source, target, [mesh_inputs[source], SMI_BOOKSTORE / "inventory.yaml"], Options())
    assert m.source.ir.splits, m.source.diagnostics
    assert not m.equivalence.unexplained()
    assert m.exit_code(accept_lossy=True) == 0


def test_permissive_mode_is_passed_to_the_check() -> None:
    m = migrate(SMI, "gateway-api", [SMI_BOOKSTORE], Options(access_mode="permissive"))
    assert m.equivalence.access_mode == "permissive"
    assert not m.equivalence.unexplained()


# --- bad input --------------------------------------------------------------------------------------------


def test_two_virtualservices_for_one_host_report_both_locations_and_the_rule_applied() -> None:
    m = migrate("istio", "linkerd", [CONFLICTS / "istio-two-virtualservices.yaml"], Options())
    conflict = [d for d in m.source.diagnostics if d.code == "SMX105"]
    assert len(conflict) == 1
    message = conflict[0].message
    assert "istio-two-virtualservices.yaml:34" in message and conflict[0].line == 24
    assert "oldest" in message and "reviews-stable" in message
    (split,) = m.source.ir.splits
    assert split.name == "reviews-stable" and [b.service for b in split.backends] == ["reviews-v1"]
    unknown = {d.resource.kind for d in m.source.diagnostics if d.code == "SMX100"}
    assert unknown == {"Gateway", "ConfigMap"}
    checks = {v.what for v in m.plan.stages[-1].verify}
    assert any(w.startswith("Gateway shop/shop-ingress") and "carried no policy" in w for w in checks)
    assert any(
        w.startswith("ConfigMap shop/reviews-settings") and "not istio configuration" in w for w in checks
    )


def test_two_intentions_for_one_destination_report_both_and_apply_the_first() -> None:
    m = migrate("consul", "istio", [CONFLICTS / "consul-two-intentions.yaml"], Options())
    conflict = [d for d in m.source.diagnostics if d.code == "SMX312"]
    assert conflict and "consul-two-intentions.yaml:25" in conflict[0].message
    assert "consul-two-intentions.yaml:33" in conflict[0].message
    sources = {s.name for t in m.source.ir.targets for s in t.sources}
    assert sources == {"web"}
    assert codes(m.source.diagnostics) >= {"SMX300"}  # the NetworkPolicy was listed and passed over


def test_broken_file_is_reported_by_line_and_the_rest_still_migrates(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x\n", encoding="utf-8")
    m = migrate("istio", "linkerd", [ISTIO, broken], Options())
    syntax = [d for d in m.source.diagnostics if d.code == "SMB001"]
    assert syntax and syntax[0].file == str(broken) and syntax[0].line is not None
    assert len(m.source.ir.splits) == 2
    assert m.exit_code(accept_lossy=True) == 1  # input errors always fail


def test_input_without_policy_says_so(tmp_path: Path) -> None:
    m = migrate("istio", "linkerd", [ISTIO / "inventory.yaml"], Options())
    assert "SMX900" in codes(m.report())
    assert m.equivalence.equivalent


# --- the plan ---------------------------------------------------------------------------------------------


def test_plan_applies_access_before_routing_and_deletes_the_old_config_last(
    istio_to_linkerd: Migration,
) -> None:
    plan = istio_to_linkerd.plan
    titles = [s.title for s in plan.stages]
    assert titles == [
        "Prepare",
        "Apply access policy",
        "Apply routing",
        "Move workloads, one namespace group at a time",
        "Soak and compare",
        "Remove the old configuration last",
    ]
    access = {o["kind"] for o in plan.files[ACCESS_FILE]}
    routing = {(o["kind"], o["apiVersion"]) for o in plan.files[ROUTING_FILE]}
    assert access == {"Server", "MeshTLSAuthentication", "HTTPRoute", "AuthorizationPolicy"}
    assert routing == {("HTTPRoute", "gateway.networking.k8s.io/v1")}
    delete = plan.stages[-1].objects
    assert delete[0].startswith("VirtualService") and delete[-1].startswith("AuthorizationPolicy")
    assert all("istio.yaml:" in line for line in delete)


def test_plan_moves_linked_namespaces_together_and_watches_the_target_mesh(
    istio_to_linkerd: Migration,
) -> None:
    move = istio_to_linkerd.plan.stages[3]
    assert "group 1 of 1, together: bookstore, warehouse" in move.actions
    assert "kubectl annotate namespace warehouse linkerd.io/inject=enabled --overwrite" in move.actions
    assert "kubectl label namespace warehouse istio-injection-" in move.actions
    queries = [v.query for v in move.verify]
    assert any("inbound_http_authz_deny_total" in q for q in queries)
    shares = [v.expect for v in move.verify if "TrafficSplit bookstore/bookstore" in v.what]
    assert shares == ["shares bookstore-v1 90%, bookstore-v2 10%"]
    soak = istio_to_linkerd.plan.stages[4]
    assert any("istio_requests_total" in v.query for v in soak.verify)


def test_plan_lists_every_item_that_needs_a_human(istio_to_linkerd: Migration) -> None:
    human = istio_to_linkerd.plan.human
    assert {h.code for h in human if h.origin == "source"} == {"SMX106"}
    assert {h.code for h in human if h.origin == "target"} == {"SMT230"}
    assert [h for h in human if h.origin == "equivalence"]
    assert all(h.code == "explained" for h in human if h.origin == "equivalence")
    text = istio_to_linkerd.plan.markdown()
    assert "## Needs a human" in text and "retries" in text and "GET / from warehouse/bookwarehouse" in text


def test_plan_without_access_objects_says_what_that_leaves_open(smi_to_gateway: Migration) -> None:
    plan = smi_to_gateway.plan
    assert plan.files[ACCESS_FILE] == []
    assert plan.stages[1].actions[0].startswith("nothing to apply: gateway-api receives no access objects")
    assert {h.code for h in plan.human if h.origin == "target"} >= {"SMT411"}


def test_plan_serialises_to_json(istio_to_linkerd: Migration) -> None:
    data = json.loads(json.dumps(istio_to_linkerd.to_dict()))
    assert data["equivalence"]["differing"] == istio_to_linkerd.equivalence.differing
    assert data["equivalence"]["differences"][0]["explainedBy"][0]["code"] == "SMT230"
    assert [s["stage"] for s in data["plan"]["stages"]] == [1, 2, 3, 4, 5, 6]
    assert data["plan"]["files"][ACCESS_FILE]


@pytest.mark.parametrize(
    ("obj", "stage"),
    [
        ({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"}, "access"),
        ({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"}, "routing"),
        ({"apiVersion": "consul.hashicorp.com/v1alpha1", "kind": "ServiceDefaults"}, "access"),
        ({"apiVersion": "consul.hashicorp.com/v1alpha1", "kind": "ServiceSplitter"}, "routing"),
        ({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup"}, "access"),
        ({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit"}, "routing"),
        (
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "s"}]},
            },
            "access",
        ),
        (
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "s"}]},
            },
            "routing",
        ),
    ],
)
def test_objects_are_staged_by_what_they_do(obj: dict[str, object], stage: str) -> None:
    assert stage_of(obj) == stage


# --- import -----------------------------------------------------------------------------------------------


def test_import_writes_smi_that_lints_clean_and_means_what_the_mesh_meant(tmp_path: Path) -> None:
    imported = import_mesh("istio", [ISTIO], Options())
    assert imported.exit_code() == 0
    out = tmp_path / "imported.yaml"
    out.write_text(yaml.safe_dump_all(imported.output.objects), encoding="utf-8")
    report = lint([out, ISTIO / "inventory.yaml"])
    assert [f"{d.code} {d.message}" for d in report.diagnostics if d.severity >= Severity.WARNING] == []
    as_smi = read_source(SMI, [out, ISTIO / "inventory.yaml"], Options()).ir
    mesh = imported.source.ir
    requests, _ = equivalence_requests([mesh, as_smi])
    assert compare(mesh, as_smi, requests).equivalent


def test_import_at_older_versions_reports_what_they_cannot_say() -> None:
    from smi_bridge.emit_smi import SmiVersions

    imported = import_mesh(
        "istio", [ISTIO], Options(), smi_versions=SmiVersions("v1alpha2", "v1alpha1", "v1alpha1")
    )
    assert {"SMX600", "SMX603"} <= codes(imported.output.diagnostics)
    assert imported.exit_code() == 1


# --- the README's worked migrations, kept honest ---------------------------------------------------------

WORKED = {
    "istio-bookstore": ("istio", "linkerd"),
    "smi-bookstore": (SMI, "gateway-api"),
}


@pytest.mark.parametrize("case", sorted(WORKED))
def test_worked_migration_report_and_plan_match_the_golden_files(
    case: str, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``expected/report.txt`` and ``expected/plan.md`` are what the README shows for these inputs."""
    from smi_bridge.migrate_cli import report_text

    monkeypatch.chdir(REPO)  # the report names files as given: relative to the checkout
    source, target = WORKED[case]
    m = migrate(source, target, [f"fixtures/migrate/{case}"], Options())
    expected = MIGRATE / case / "expected"
    for name, text in (("report.txt", report_text(m)), ("plan.md", m.plan.markdown())):
        path = expected / name
        if update_golden:
            expected.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            continue
        assert path.is_file(), f"{path} is missing: run pytest --update-golden"
        golden = path.read_text(encoding="utf-8")
        diff = "".join(difflib.unified_diff(golden.splitlines(True), text.splitlines(True), str(path), "now"))
        assert text == golden, diff


def test_serviceprofiles_are_deleted_as_soon_as_their_namespace_moves_to_httproutes(tmp_path: Path) -> None:
    """Linkerd gives a ServiceProfile precedence over HTTPRoutes: linkerd-smi's profiles must go."""
    smi = read_source(SMI, [SMI_BOOKSTORE], Options())
    profiles = emit_target(smi.ir, "linkerd", Options(linkerd_split="serviceprofile")).objects
    assert "ServiceProfile" in {o["kind"] for o in profiles}
    (tmp_path / "linkerd.yaml").write_text(yaml.safe_dump_all(profiles), encoding="utf-8")
    m = migrate("linkerd", "linkerd", [tmp_path, SMI_BOOKSTORE / "inventory.yaml"], Options())
    assert m.source.ir.splits and not m.equivalence.unexplained()
    assert any("precedence over HTTPRoutes" in a for a in m.plan.stages[0].actions)
    move = m.plan.stages[3].actions
    restart = move.index("kubectl rollout restart deployment,statefulset,daemonset -n bookstore")
    delete = move.index(
        "kubectl delete serviceprofiles.linkerd.io -n bookstore bookstore.bookstore.svc.cluster.local"
    )
    assert delete == restart + 1
