"""The gates a candidate must pass before it may be promoted to blue.

Each gate gives one result: its name, whether it passed, whether it blocks, and a sentence
saying what was compared. The stage fails when a blocking gate fails; an advisory gate that
fails is recorded and reported, and blocks nothing.
"""

from __future__ import annotations

from typing import Any

from itsacat.pipeline.stages import StageContext, StageFailed


def gate(context: StageContext) -> dict[str, Any]:
    """Judge the candidate: test accuracy, regression against blue, smoke labels, latency."""
    gates = context.config.gates
    candidate = context.registry.get_version(context.model_version_id())
    blue_state = context.registry.slot_state("blue")
    blue = None if blue_state.version_id is None else context.registry.get_version(
        blue_state.version_id)
    checks = context.outcomes.get("verify_green", {}).get("checks", [])

    results = [min_accuracy_gate(candidate.test_accuracy, gates.min_test_accuracy),
               regression_gate(candidate, blue, gates.max_regression),
               *smoke_label_gates(checks, blocking=gates.smoke_labels == "blocking"),
               latency_gate(checks, gates.latency_budget_ms)]
    for result in results:
        kind = "" if result["blocking"] else " (advisory)"
        verdict = "passed" if result["passed"] else "FAILED"
        context.log(f"gate {result['gate']}{kind}: {verdict}: {result['detail']}")

    failed = [result for result in results if result["blocking"] and not result["passed"]]
    outcome = {"gates": results, "blue_version_id": blue_state.version_id,
               "advisory_failures": [result["gate"] for result in results
                                     if not result["blocking"] and not result["passed"]]}
    if failed:
        reasons = "; ".join(f"{result['gate']}: {result['detail']}" for result in failed)
        raise StageFailed(f"{len(failed)} blocking gate(s) failed: {reasons}", outcome)
    return outcome


def min_accuracy_gate(accuracy: float | None, minimum: float) -> dict[str, Any]:
    if accuracy is None:
        return _result("min_test_accuracy", minimum <= 0.0,
                       f"the candidate has no recorded test accuracy; minimum {minimum:.4f}")
    return _result("min_test_accuracy", accuracy >= minimum,
                   f"test accuracy {accuracy:.4f}, minimum {minimum:.4f}")


def regression_gate(candidate, blue, tolerance: float) -> dict[str, Any]:
    if blue is None:
        return _result("no_regression", True, "blue is empty; nothing to compare against")
    if blue.id == candidate.id:
        return _result("no_regression", True, f"blue already serves model version {blue.id}")
    if blue.test_accuracy is None:
        return _result("no_regression", True, f"blue's model version {blue.id} has no "
                       "recorded test accuracy to compare against")
    if candidate.test_accuracy is None:
        return _result("no_regression", False, f"the candidate has no recorded test accuracy "
                       f"to compare with blue's {blue.test_accuracy:.4f}")
    floor = blue.test_accuracy - tolerance
    return _result("no_regression", candidate.test_accuracy >= floor,
                   f"test accuracy {candidate.test_accuracy:.4f} against blue's (model version "
                   f"{blue.id}) {blue.test_accuracy:.4f} minus tolerance {tolerance:.4f}")


def smoke_label_gates(checks: list[dict[str, Any]], blocking: bool) -> list[dict[str, Any]]:
    results = []
    for check in checks:
        if not check.get("expected"):
            continue
        passed = check.get("label") == check["expected"]
        results.append(_result(f"smoke_label:{check['name']}", passed,
                               f"predicted {check.get('label')}, expected {check['expected']}",
                               blocking=blocking))
    return results


def latency_gate(checks: list[dict[str, Any]], budget_ms: float) -> dict[str, Any]:
    if not checks:
        return _result("latency", True, "no smoke request was made")
    slowest = max(checks, key=lambda check: check["latency_ms"])
    return _result("latency", slowest["latency_ms"] <= budget_ms,
                   f"slowest smoke request {slowest['name']} took {slowest['latency_ms']} ms, "
                   f"budget {budget_ms:.0f} ms")


def _result(name: str, passed: bool, detail: str, blocking: bool = True) -> dict[str, Any]:
    return {"gate": name, "passed": bool(passed), "blocking": blocking, "detail": detail}
