"""``smi-bridge lint`` as a command: exit codes for every format, usage errors, stdin, colour, --strict.

The exit-code matrix runs the subcommand in-process (``execute`` with string streams); the
end-to-end tests run the installed ``smi-bridge`` executable as a subprocess.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smi_bridge.lint.cli import configure, execute
from smi_bridge.lint.formatters import FORMATTERS
from smi_bridge.lint.registry import all_checks
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "lint" / "SMB081-unanchored-header-pattern" / "negative.yaml"
ERROR = FIXTURES / "lint" / "SMB050-negative-weight" / "positive.yaml"
WARNING = FIXTURES / "lint" / "SMB081-unanchored-header-pattern" / "positive.yaml"
INFO = FIXTURES / "lint" / "SMB086-empty-path-regex" / "positive.yaml"
UNKNOWN_FIELD = b"""\
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: db}
spec:
  matches: {ports: [5432]}
  port: 5432
"""


class FakeStdin(io.StringIO):
    def __init__(self, data: bytes = b"", tty: bool = False) -> None:
        super().__init__(data.decode())
        self._bytes = io.BytesIO(data)
        self.tty = tty

    @property
    def buffer(self) -> io.BytesIO:
        return self._bytes

    def isatty(self) -> bool:
        return self.tty


def run_lint(
    *argv: str, stdin: bytes | None = None, tty: bool = False, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    configure(parser)
    out, err = io.StringIO(), io.StringIO()
    fake = FakeStdin(stdin or b"", tty=stdin is None and tty)
    code = execute(parser.parse_args(list(argv)), stdin=fake, stdout=out, stderr=err, environ=env or {})
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_exit_codes_are_the_same_for_every_output_format(fmt: str) -> None:
    assert run_lint("-o", fmt, str(CLEAN))[0] == 0
    assert run_lint("-o", fmt, str(ERROR))[0] == 1
    assert run_lint("-o", fmt, str(WARNING))[0] == 0
    assert run_lint("-o", fmt, "--fail-on", "warning", str(WARNING))[0] == 1
    assert run_lint("-o", fmt, "--fail-on", "warning", str(INFO))[0] == 0
    assert run_lint("-o", fmt, "--fail-on", "info", str(INFO))[0] == 1
    assert run_lint("-o", fmt, "--suppress", "SMB050", str(ERROR))[0] == 0


@pytest.mark.parametrize("fmt", list(FORMATTERS))
def test_unparsable_input_exits_1_in_every_format(fmt: str) -> None:
    code, out, err = run_lint("-o", fmt, "-", stdin=b"kind: [unclosed\n")
    assert (code, err) == (1, "")
    assert "SMB001" in out


def test_a_path_that_does_not_exist_is_a_finding_not_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run_lint("-o", "json", str(tmp_path / "missing.yaml"))
    assert (code, err) == (1, "")
    assert [f["code"] for f in json.loads(out)["findings"]] == ["SMB010"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--suppress", "SMB999", "x.yaml"], "no check has the code SMB999"),
        (["--suppress", "weights", "x.yaml"], "is not a check code"),
        (["--suppress", "SMB036=", "x.yaml"], "give Kind/namespace/name"),
        (["--fail-on", "fatal", "x.yaml"], "--fail-on 'fatal'"),
        (["-o", "yaml", "x.yaml"], "-o 'yaml'"),
        (["--color", "sometimes", "x.yaml"], "--color 'sometimes'"),
        (["--assume-version", "split.smi-spec.io/v9", "x.yaml"], "--assume-version"),
        (["--assume-version", "Pod=split.smi-spec.io/v1alpha4", "x.yaml"], "has no kind 'Pod'"),
        ([], "no input"),
    ],
)
def test_usage_errors_print_one_line_and_exit_2(argv: list[str], says: str) -> None:
    code, out, err = run_lint(*argv, tty=True)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("smi-bridge lint: error: ") and says in err


def test_piped_stdin_is_read_without_a_dash() -> None:
    code, out, _ = run_lint("-o", "json", stdin=ERROR.read_bytes())
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert (finding["code"], finding["file"]) == ("SMB050", "<stdin>")


def test_strict_turns_unknown_fields_into_errors() -> None:
    code, out, _ = run_lint("-o", "json", "-", stdin=UNKNOWN_FIELD)
    assert code == 0
    assert [(f["code"], f["severity"]) for f in json.loads(out)["findings"]] == [("SMB024", "warning")]
    code, out, _ = run_lint("-o", "json", "--strict", "-", stdin=UNKNOWN_FIELD)
    assert code == 1
    assert [(f["code"], f["severity"]) for f in json.loads(out)["findings"]] == [("SMB024", "error")]


def test_strict_turns_duplicate_keys_into_errors() -> None:
    doc = b"apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: db}\nspec: {matches: {ports: [1]}}\nkind: TCPRoute\n"
    assert run_lint("-", stdin=doc)[0] == 0
    code, out, _ = run_lint("--strict", "-", stdin=doc)
    assert code == 1 and "error[SMB003]" in out


def test_suppression_glob_silences_only_matching_objects() -> None:
    two = FIXTURES / "lint" / "SMB100-object-defined-twice" / "positive.yaml"
    assert run_lint("--suppress", "SMB100=TrafficSplit/other/*", "--fail-on", "warning", str(two))[0] == 1
    code, out, _ = run_lint(
        "--suppress", "SMB100=TrafficSplit/default/reviews-*", "--fail-on", "warning", "--summary", str(two)
    )
    assert code == 0 and out.endswith("; 1 suppressed\n")


def test_namespace_option_applies_to_documents_without_one() -> None:
    out = run_lint("-o", "json", "-n", "shop", str(ERROR))[1]
    assert json.loads(out)["findings"][0]["resource"]["namespace"] == "shop"


def test_assume_version_reads_spec_examples_without_apiversion() -> None:
    bare = b"kind: TrafficSplit\nmetadata: {name: canary}\nspec:\n  service: website\n  backends:\n  - {service: website-v1, weight: 90}\n"
    assert "SMB020" in run_lint("-", stdin=bare)[1]
    code, out, _ = run_lint("--assume-version", "split.smi-spec.io/v1alpha4", "-", stdin=bare)
    assert (code, out) == (0, "")


def test_color_auto_follows_the_terminal_and_no_color() -> None:
    assert "\x1b[" not in run_lint(str(ERROR))[1]
    assert "\x1b[" in run_lint("--color", "always", str(ERROR))[1]
    assert "\x1b[" in run_lint("--color", "always", str(ERROR), env={"NO_COLOR": "1"})[1]
    assert "\x1b[" not in run_lint("--color", "never", str(ERROR))[1]


def test_list_checks_in_text_and_json() -> None:
    code, out, _ = run_lint("--list-checks")
    assert code == 0 and len(out.splitlines()) == len(all_checks())
    code, out, _ = run_lint("--list-checks", "-o", "json")
    assert code == 0 and [c["code"] for c in json.loads(out)["checks"]] == [c.code for c in all_checks()]


# --- end to end: the installed executable ---------------------------------------------------------


def cli() -> list[str]:
    exe = shutil.which("smi-bridge", path=str(Path(sys.executable).parent))
    return [exe, "lint"] if exe else [sys.executable, "-m", "smi_bridge.cli", "lint"]


def test_cli_end_to_end_json_on_stdout_and_exit_1() -> None:
    proc = subprocess.run(
        [*cli(), "-o", "json", str(ERROR), str(CLEAN)], capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode, proc.stderr) == (1, "")
    out = json.loads(proc.stdout)
    assert [f["code"] for f in out["findings"]] == ["SMB050"]
    assert out["summary"]["documents"] == 2


def test_cli_end_to_end_usage_error_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [*cli(), "--suppress", "SMB999", str(CLEAN)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_cli_end_to_end_reads_stdin_and_never_prints_a_traceback() -> None:
    proc = subprocess.run(
        [*cli(), "-o", "github", "-"], input=b"\x00\xff binary \x00", capture_output=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr == b""
    assert proc.stdout.startswith(b"::error file=<stdin>")


def test_cli_end_to_end_colour_on_a_terminal_unless_no_color() -> None:
    def on_terminal(env: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run(
                [*cli(), str(ERROR)], stdout=follower, stderr=subprocess.PIPE, env=env, timeout=120
            )
        finally:
            os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert proc.returncode == 1
        return b"".join(chunks)

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert b"\x1b[1;31merror[SMB050]" in on_terminal(env)
    assert b"\x1b[" not in on_terminal({**env, "NO_COLOR": "1"})


def test_dash_on_an_interactive_terminal_is_a_usage_error() -> None:
    code, out, err = run_lint("-", tty=True)
    assert (code, out) == (2, "")
    assert "no input" in err
