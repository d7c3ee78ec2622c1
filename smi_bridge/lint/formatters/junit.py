"""JUnit XML output (CI test reports): one test suite per file, one test case per object.

Every finding is a ``<failure>`` of the test case of the object it is about (its ``type`` is the
severity, its message starts with the code); objects without findings are passing test cases, so a
report shows what was checked. Findings about no object (a file that is not YAML) get a test case
named after the file. Text that XML 1.0 cannot hold (control characters from a broken input) is
replaced, so the document is always well-formed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from smi_bridge.diagnostics import Diagnostic
from smi_bridge.lint.engine import LintReport
from smi_bridge.lint.formatters.base import RenderOptions, resource_label

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NO_FILE = "<input>"


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render(report: LintReport, options: RenderOptions) -> str:
    # file -> case name -> findings (insertion order: objects in input order, then finding-only cases)
    cases: dict[str, dict[str, list[Diagnostic]]] = defaultdict(dict)
    for obj in report.objects:
        file = obj.file or _NO_FILE
        cases[file].setdefault(resource_label(obj.ref) or file, [])
    for d in report.diagnostics:
        file = d.file or _NO_FILE
        cases[file].setdefault(resource_label(d.resource) or file, []).append(d)

    root = ET.Element("testsuites", name="smi-bridge lint")
    total_tests = total_failures = 0
    for file, by_case in cases.items():
        failures = sum(1 for found in by_case.values() if found)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=xml_text(file),
            tests=str(len(by_case)),
            failures=str(failures),
            errors="0",
            skipped="0",
        )
        for name, found in by_case.items():
            case = ET.SubElement(suite, "testcase", classname=xml_text(file), name=xml_text(name))
            for d in found:
                failure = ET.SubElement(
                    case, "failure", type=str(d.severity), message=xml_text(f"{d.code}: {d.message}")
                )
                details = [f"{d.location()}: {d.severity}[{d.code}] {d.message}"]
                if d.path:
                    details.append(f"path: {d.path}")
                if d.hint:
                    details.append(f"hint: {d.hint}")
                failure.text = xml_text("\n".join(details))
        total_tests += len(by_case)
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
