"""JUnit XML for ``harness check --junit FILE``: one testcase per gate.

The shape GitHub test reporters, GitLab (``artifacts:reports:junit``) and Jenkins (the JUnit
plugin) all read: ``<testsuites>`` > ``<testsuite>`` > ``<testcase>``. A failed gate is a
``<failure>``; a gate that cannot be decided is an ``<error>`` (the test could not reach a
verdict), so no reporter shows it as passed; a passed gate carries its reason in
``<system-out>``. When nothing could be checked at all (a replay miss, no baseline and no
gates) the suite holds one ``harness check`` testcase with that ``<error>``. A gate on a
metric or judge defined differently in the two runs (``harness.compare.definitions``) has
that note in its text, and the suite each such note as a ``note`` property.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from harness.compare.result import FAIL, UNDECIDED, CheckResult, GateResult
from harness.numbers import ci, number, signed

__all__ = ["check_junit"]

# Characters XML 1.0 has no form for (most control characters: a run named with a \x01 in
# it, say). ElementTree writes them as they are, and every JUnit reader then refuses the
# whole file; each is written as the text of its escape instead, so it stays visible.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if m.group() < "\x20" else
                        f"\\u{ord(m.group()):04x}", text)  # fmt: skip


def check_junit(result: CheckResult, *, timestamp: datetime | None = None) -> str:
    """The check as a JUnit XML document (UTF-8 text with its declaration)."""
    cases = [_case(g, result) for g in result.gates]
    if result.undecided_reason:
        case = ET.Element("testcase", name="harness check", classname="harness.check", time="0")
        error = ET.SubElement(case, "error", message=result.undecided_reason, type="undecided")
        error.text = result.undecided_reason
        cases.append(case)
    failures = sum(g.outcome == FAIL for g in result.gates)
    errors = sum(g.outcome == UNDECIDED for g in result.gates) + bool(result.undecided_reason)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": "0"}  # fmt: skip
    name = "harness check"
    if result.candidate:
        name += f": {result.candidate.label}"
    root = ET.Element("testsuites", {"name": "harness check", **counts})
    stamp = (timestamp or datetime.now(timezone.utc)).replace(microsecond=0)
    suite = ET.SubElement(
        root, "testsuite", {"name": name, "timestamp": stamp.isoformat(), **counts}
    )
    properties = ET.SubElement(suite, "properties")
    for key, run in (("candidate", result.candidate), ("baseline", result.baseline)):
        if run is not None:
            value = f"{run.run_id} {run.model} on {run.dataset}@{run.dataset_version}"
            ET.SubElement(properties, "property", name=key, value=value)
    ET.SubElement(properties, "property", name="outcome", value=result.outcome)
    for _, note in result.warnings():
        ET.SubElement(properties, "property", name="note", value=note)
    suite.extend(cases)
    for element in root.iter():
        if element.text:
            element.text = _xml_text(element.text)
        for key, value in element.attrib.items():
            element.set(key, _xml_text(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _case(gate: GateResult, result: CheckResult) -> ET.Element:
    classname = "harness.check." + (result.candidate.run_id if result.candidate else "run")
    case = ET.Element("testcase", name=gate.gate.name, classname=classname, time="0")
    observed = signed(gate.observed, 4) if gate.gate.needs_baseline else number(gate.observed)
    details = (
        f"{gate.reason}\nobserved: {observed}\n95% CI: {ci(gate.low, gate.high)}\n"
        f"gate from: {gate.gate.origin}"
    )
    note = result.gate_note(gate)
    if note:
        details += f"\nnote: {note}"
    if gate.outcome == FAIL:
        failure = ET.SubElement(case, "failure", message=gate.reason, type=gate.finding)
        failure.text = details
    elif gate.outcome == UNDECIDED:
        error = ET.SubElement(case, "error", message=gate.reason, type="undecided")
        error.text = details
    else:
        ET.SubElement(case, "system-out").text = details
    return case
