"""Round-trip proofs: for every target B, ``ingest_B(emit_B(ir))`` decides every generated request exactly
like ``ir``, or the difference is one B's lossy report names (the rule in ``smi_bridge.equivalence``).

This is also the semantic check of the emitters for every fixture under ``fixtures/translate/``: the
golden tests say what the objects look like, these say what they mean once the mesh reads them.
``smi`` (``emit_smi`` read back by ``build``) takes part as one more target, at every API version.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from backends import REGISTRY
from backends.base import Options
from smi_bridge.emit_smi import VERSIONS, SmiVersions
from smi_bridge.equivalence import (
    Equivalence,
    compare,
    difference_lines,
    equivalence_requests,
    iter_lines,
    provenance_of,
)
from smi_bridge.ir import IR, Service, ServicePort, Split, SplitBackend
from smi_bridge.migrate import SMI, emit_target, read_back
from tests.strategies import irs
from tests.translate_cases import Case, cases

TARGETS = [*REGISTRY, SMI]
CASES = cases()
MAX_REQUESTS = 5000
# Every example emits, reads back and decides thousands of requests; shrinking a failure would take
# minutes, and the unshrunk example with its differences (below) already says what went wrong.
PROPERTY = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def round_trip(
    ir: IR, target: str, options: Options, versions: SmiVersions | None = None, headers: str = "list"
) -> Equivalence:
    out = emit_target(ir, target, options, smi_versions=versions or SmiVersions(), headers=headers)  # type: ignore[arg-type]
    back, _ = read_back(out, IR(services=ir.services, pods=ir.pods), options)
    requests, generated = equivalence_requests([ir, back], max_requests=MAX_REQUESTS)
    return compare(
        ir,
        back,
        requests,
        lossy=out.diagnostics,
        access_mode=options.access_mode,
        generated=generated,
        provenance=provenance_of(out.objects),
    )


def unexplained_text(eq: Equivalence) -> str:
    """The summary line and every unexplained difference (the explained ones are expected)."""
    lines = [next(iter_lines(eq))]
    for g in eq.unexplained()[:8]:
        lines.extend(difference_lines(g))
    return "\n".join(lines)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_reads_back_deciding_alike_or_as_reported(case: Case, target: str) -> None:
    built, _ = case.build()
    eq = round_trip(built.ir, target, case.options)
    assert not eq.unexplained(), unexplained_text(eq)


def test_fixtures_exercise_the_check() -> None:
    """The fixtures hold policy, and some targets are lossy on them: the proof is not vacuous."""
    lossy = 0
    for case in CASES:
        built, _ = case.build()
        assert built.ir.splits or built.ir.targets or "missing-inventory" in case.name, case.name
        lossy += sum(1 for t in TARGETS if round_trip(built.ir, t, case.options).groups)
    assert lossy > 0


def with_root_ports(ir: IR) -> IR:
    """``ir`` with every split root given the ports of its backends that it lacks.

    A request to a root on a port the root Service does not have goes to the backends in the
    reference meaning, while every mesh target leaves such a request alone (the Service has no such
    port, so nothing routes it). That disagreement is pinned by
    ``test_request_on_a_port_only_the_backends_have`` below; the random IRs avoid it so that they
    keep testing everything else.
    """
    extra: dict[tuple[str, str], list[ServicePort]] = {}
    for split in ir.splits:
        root = ir.service(split.namespace, split.root)
        if root is None or not root.ports:
            continue
        have = {p.port for p in root.ports} | {p.port for p in extra.get((root.namespace, root.name), [])}
        for b in split.backends:
            backend = ir.service(split.namespace, b.service)
            for p in backend.ports if backend is not None else ():
                if p.port not in have:
                    have.add(p.port)
                    extra.setdefault((root.namespace, root.name), []).append(p)
    services = tuple(
        replace(s, ports=(*s.ports, *extra[(s.namespace, s.name)])) if (s.namespace, s.name) in extra else s
        for s in ir.services
    )
    return replace(ir, services=services)


_VERSIONS = st.builds(
    SmiVersions,
    st.sampled_from(VERSIONS["split"]),
    st.sampled_from(VERSIONS["access"]),
    st.sampled_from(VERSIONS["specs"]),
)
_MODES = st.sampled_from(("enforce", "permissive"))


@pytest.mark.parametrize("target", list(REGISTRY))
@settings(PROPERTY, max_examples=20)
@given(ir=irs(max_namespaces=4), mode=_MODES)
def test_random_ir_reads_back_deciding_alike_or_as_reported(target: str, ir: IR, mode: str) -> None:
    eq = round_trip(with_root_ports(ir), target, Options(access_mode=mode))  # type: ignore[arg-type]
    assert not eq.unexplained(), unexplained_text(eq)


@settings(PROPERTY, max_examples=40)
@given(ir=irs(max_namespaces=4), mode=_MODES, versions=_VERSIONS, headers=st.sampled_from(("list", "map")))
def test_random_ir_as_smi_at_any_version_reads_back_alike_or_as_reported(
    ir: IR, mode: str, versions: SmiVersions, headers: str
) -> None:
    eq = round_trip(ir, SMI, Options(access_mode=mode), versions, headers)  # type: ignore[arg-type]
    assert not eq.unexplained(), unexplained_text(eq)


@settings(PROPERTY, max_examples=20)
@given(ir=irs(max_namespaces=4), mode=_MODES)
def test_random_ir_as_newest_smi_reads_back_exactly(ir: IR, mode: str) -> None:
    """At the default versions SMI says everything the IR can: no difference at all."""
    eq = round_trip(ir, SMI, Options(access_mode=mode))  # type: ignore[arg-type]
    assert eq.equivalent, unexplained_text(eq)


_SHARED_PORTLESS = IR(
    services=(
        Service("f", "front", ports=(ServicePort(869, "tcp-0"),), service_accounts=("sa",)),
        Service("f", "api", ports=(ServicePort(80, "http"),), service_accounts=("sa",)),
    ),
    splits=(Split("f", "s", "front", (SplitBackend("api", 1),)),),
)


@pytest.mark.parametrize("target", TARGETS)
def test_request_on_a_port_only_the_backends_have(target: str) -> None:
    eq = round_trip(_SHARED_PORTLESS, target, Options())
    assert not eq.unexplained(), unexplained_text(eq)
