"""Small parts of the controller with sharp edges: MicroTime, Event names, backoff, addresses, the CLI."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smi_bridge.controller.events import event_name, micro_time, note_for, reason_for
from smi_bridge.controller.health import parse_address
from smi_bridge.controller.kubeapi import Backoff, ConfigError, ResourceType, load_config
from smi_bridge.diagnostics import Diagnostic, Severity
from tests.conftest import REPO

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@given(st.datetimes(timezones=st.just(UTC)))
def test_micro_time_always_has_six_fractional_digits(at: datetime) -> None:
    text = micro_time(at)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == at


def test_micro_time_keeps_zero_microseconds_where_isoformat_drops_them() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert at.isoformat() == "2026-01-01T00:00:00+00:00"  # what the API server rejects
    assert micro_time(at) == "2026-01-01T00:00:00.000000Z"


names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,260}[a-z0-9])?", fullmatch=True)


@given(names, st.integers(min_value=0, max_value=2**64))
def test_event_names_are_valid_subdomains(name: str, nanos: int) -> None:
    out = event_name(name, nanos)
    assert len(out) <= 253
    assert SUBDOMAIN.match(out), out


def test_reasons_and_notes_come_from_the_diagnostic() -> None:
    lossy = Diagnostic("SMT110", Severity.WARNING, "not exact", path="spec.rules[0]", hint="see the README")
    broken = Diagnostic("SMB035", Severity.ERROR, "all zero")
    assert (reason_for(lossy), reason_for(broken)) == ("LossyTranslation", "InvalidPolicy")
    assert reason_for(Diagnostic("SMC001", Severity.WARNING, "x")) == "ApplyConflict"
    assert note_for(lossy) == "[SMT110] not exact at spec.rules[0] (hint: see the README)"
    assert len(note_for(Diagnostic("SMT1", Severity.WARNING, "x" * 5000))) == 1024


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=100))
def test_backoff_grows_caps_and_never_undercuts_retry_after(failures: int, retry_after: float) -> None:
    b = Backoff(base=0.2, cap=30.0, rng=random.Random(failures))
    plain = b.delay(failures)
    assert 0.1 * min(2 ** (failures - 1), 150) * 0.5 <= plain * 2 and plain <= 30.0
    assert b.delay(failures, retry_after) >= retry_after


def test_addresses() -> None:
    assert parse_address(":8080") == ("0.0.0.0", 8080)
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:9") == ("::1", 9)
    assert parse_address("0") is None and parse_address("") is None
    for bad in ("8080", "host:port", ":70000"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_resource_paths() -> None:
    rt = ResourceType("split.smi-spec.io", "v1alpha4", "trafficsplits", "TrafficSplit")
    assert rt.path("ns", "a") == "/apis/split.smi-spec.io/v1alpha4/namespaces/ns/trafficsplits/a"
    assert rt.path() == "/apis/split.smi-spec.io/v1alpha4/trafficsplits"
    core = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
    assert core.path("ignored", "x", "status") == "/api/v1/namespaces/x/status"


def test_the_controller_command_reports_bad_configuration_without_a_traceback() -> None:
    cmd = [
        sys.executable,
        "-m",
        "smi_bridge.controller",
        "--backend",
        "istio",
        "--kubeconfig",
        "/no/such/file",
    ]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "smi-bridge controller: error: kubeconfig /no/such/file: no such file"
    out = subprocess.run(
        [*cmd[:5], "--lease-duration", "1", "--renew-deadline", "2", "--kubeconfig", "/dev/null"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--retry-period < --renew-deadline < --lease-duration" in out.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "root:x:0:0:root:/root:/bin/bash\n",
            "not a kubeconfig (a YAML mapping with clusters, users and contexts)",
        ),
        ("clusters: [\n", "not valid YAML"),
        ("- a\n- b\n", "not a kubeconfig"),
    ],
)
def test_a_file_that_is_not_a_kubeconfig_is_named_not_traced(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(f"kubeconfig {path}")
    assert message in str(err.value)
