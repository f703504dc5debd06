"""Argo Rollouts' success and failure conditions, in the few forms its documentation gives for Prometheus
results, evaluated the way Argo does; any other form is refused, so what a test evaluates is what Argo would."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from enum import StrEnum

_NUMBER = r"-?\d+(?:\.\d+)?"
_ATOMS = {
    "empty": re.compile(r"len\(result\) == 0"),
    "present": re.compile(r"len\(result\) > 0"),
    "nan": re.compile(r"isNaN\(result\[0\]\)"),
    "not_nan": re.compile(r"!isNaN\(result\[0\]\)"),
    "compare": re.compile(rf"result\[0\] (?P<op>>=|<=|>|<) (?P<bound>{_NUMBER})"),
}


class Phase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


class UnsupportedConditionError(ValueError):
    pass


def _atom(text: str, result: Sequence[float]) -> bool:
    for name, pattern in _ATOMS.items():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if name == "empty":
            return len(result) == 0
        if name == "present":
            return len(result) > 0
        if not result:
            # Argo fails the measurement with an error: result[0] of an empty vector.
            raise IndexError(f"{text!r} reads result[0] of an empty result")
        value = result[0]
        if name == "nan":
            return math.isnan(value)
        if name == "not_nan":
            return not math.isnan(value)
        bound, op = float(match["bound"]), match["op"]
        # As in Go, every ordered comparison with NaN is false.
        return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]
    raise UnsupportedConditionError(f"condition part {text!r} is not one of the forms Argo documents")


def evaluate(condition: str, result: Sequence[float]) -> bool:
    """One condition over a Prometheus vector's values; `||` and `&&` short-circuit, never mixed."""
    text = condition.strip()
    if "||" in text and "&&" in text:
        raise UnsupportedConditionError(f"condition {condition!r} mixes || and &&")
    if "||" in text:
        return any(_atom(part.strip(), result) for part in text.split("||"))
    return all(_atom(part.strip(), result) for part in text.split("&&"))


def judge(success: str, failure: str, result: Sequence[float]) -> Phase:
    """A measurement's phase: the failure condition first, then success, else inconclusive (Argo's order)."""
    if evaluate(failure, result):
        return Phase.FAILED
    if evaluate(success, result):
        return Phase.SUCCESSFUL
    return Phase.INCONCLUSIVE
