"""Claims: words of the manuscript whose truth depends on the results, checked on every build.

An author marks the words with the condition they assert, in pandoc's span syntax (the same
under Quarto and plain pandoc)::

    an effect [still present at two weeks but not later]{.claim
    if="week2.p < protocol.alpha and week4.p >= protocol.alpha"}

Names in a condition are registry keys (``results/numbers.json``) standing for their values;
a condition may use ``and``, ``or``, ``not``, comparisons (``< <= > >= == != in``), ``+ - * /``,
numbers, strings, lists, and ``abs``, ``len``, ``min``, ``max``. Nothing else is accepted: a
condition is data to evaluate, never code to run (it is parsed with :mod:`ast` and walked node
by node; no ``eval``).

The rule ``check_claims`` runs :func:`check_document` before a document is rendered. A claim
the results no longer support stops the build with the manuscript's file and line, the claim,
its condition and the values it was checked against. The same pass refuses a malformed span
(``[key{.num}``, a ``.claim`` without ``if``), which pandoc would otherwise print literally.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: classes the manuscript's filter (manuscript/filters/numbers.lua) gives meaning to
SPAN_CLASSES = ("num", "cite", "trials", "claim")

_ATTRIBUTES = re.compile(r"\{(?P<body>[^{}]*)\}")
_SPAN_CLASS = re.compile(r"\{\s*\.(?P<cls>" + "|".join(SPAN_CLASSES) + r")\b")
_IF = re.compile(r"""\bif\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "len": len, "min": min, "max": max}


class ClaimError(ValueError):
    """A claim the results do not support, or a malformed span; the message names file and line."""


@dataclass
class Claim:
    """One ``[words]{.claim if="condition"}`` span of a manuscript."""

    path: str
    line: int
    text: str
    condition: str
    values: dict[str, Any] = field(default_factory=dict)
    holds: bool | None = None
    problem: str | None = None

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _opening_bracket(text: str, close: int) -> int | None:
    """The ``[`` that the ``]`` at ``close`` ends (nested brackets counted), or None."""
    depth = 0
    for i in range(close, -1, -1):
        if text[i] == "]" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "[" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return i
    return None


def find_claims(text: str, path: str = "manuscript") -> tuple[list[Claim], list[str]]:
    """The claims of a manuscript and the problems of its spans (``file:line: message``)."""
    claims: list[Claim] = []
    problems: list[str] = []
    for match in _SPAN_CLASS.finditer(text):
        start = match.start()
        line = _line_of(text, start)
        attributes = _ATTRIBUTES.match(text, start)
        body = attributes.group("body") if attributes else ""
        if start == 0 or text[start - 1] != "]":
            problems.append(
                f"{path}:{line}: a {{.{match.group('cls')}}} attribute that follows no [...]: "
                "the span is not closed (write [key]{.num}), so it would be printed literally"
            )
            continue
        opening = _opening_bracket(text, start - 1)
        if opening is None:
            problems.append(f"{path}:{line}: the [...] before {{.{match.group('cls')}}} is never opened")
            continue
        if match.group("cls") != "claim":
            continue
        condition = _IF.search(body)
        words = " ".join(text[opening + 1 : start - 1].split())
        if condition is None:
            problems.append(f'{path}:{_line_of(text, opening)}: the claim "{words}" has no if="condition"')
            continue
        # a condition may wrap across lines in the .qmd, as the sentence around it does
        written = condition.group("dq") if condition.group("dq") is not None else condition.group("sq")
        claims.append(Claim(path, _line_of(text, opening), words, " ".join(written.split())))
    return claims, problems


def _key(node: ast.AST) -> str | None:
    """``a.b.c`` for a dotted name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def parse_condition(condition: str) -> ast.Expression:
    """Parse a condition, refusing anything but the documented grammar."""
    try:
        tree = ast.parse(condition.strip(), mode="eval")
    except SyntaxError as error:
        raise ClaimError(f"cannot read the condition {condition!r}: {error.msg}") from None
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.Compare,
        ast.BinOp,
        ast.Constant,
        ast.List,
        ast.Tuple,
        ast.Name,
        ast.Attribute,
        ast.Load,
        ast.Call,
        *_COMPARE,
        *_ARITHMETIC,
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ClaimError(f"the condition {condition!r} uses {type(node).__name__}, which a condition may not")
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
                raise ClaimError(
                    f"the condition {condition!r} calls {ast.unparse(node.func)}: only "
                    f"{', '.join(_FUNCTIONS)} are allowed"
                )
        if isinstance(node, ast.Attribute) and _key(node) is None:
            raise ClaimError(f"the condition {condition!r} has {ast.unparse(node)}, which is not a registry key")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool | type(None)):
            raise ClaimError(f"the condition {condition!r} has a constant of type {type(node.value).__name__}")
    return tree


def evaluate(condition: str, numbers: Mapping[str, Mapping[str, Any]]) -> tuple[bool, dict[str, Any]]:
    """Evaluate ``condition`` with registry values; returns (holds, {key: value used})."""
    tree = parse_condition(condition)
    used: dict[str, Any] = {}

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](*(value(a) for a in node.args))  # type: ignore[attr-defined]
        key = _key(node)
        if key is not None:
            if key not in numbers:
                raise ClaimError(f"the condition {condition!r} names {key!r}, which is not in the registry")
            used[key] = numbers[key].get("value")
            if used[key] is None:
                raise ClaimError(f"the condition {condition!r} needs {key}, which is not estimable in this build")
            return used[key]
        if isinstance(node, ast.BoolOp):
            results = [bool(value(v)) for v in node.values]  # every key evaluated: all values shown
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            operand = value(node.operand)
            return (
                (not operand)
                if isinstance(node.op, ast.Not)
                else (-operand if isinstance(node.op, ast.USub) else operand)
            )
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Compare):
            left, holds = value(node.left), True
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = value(comparator)
                try:
                    holds = holds and _COMPARE[type(op)](left, right)
                except TypeError as error:
                    raise ClaimError(
                        f"the condition {condition!r} compares values that cannot be compared: {error}"
                    ) from None
                left = right
            return holds
        raise ClaimError(
            f"the condition {condition!r} has {ast.unparse(node)}, which a condition may not"
        )  # pragma: no cover

    return bool(value(tree)), used


def _shown(key: str, value: Any, numbers: Mapping[str, Mapping[str, Any]]) -> str:
    text = numbers[key].get("text")
    return f"{key} = {value!r}" + (f" (printed {text})" if text is not None and str(text) != str(value) else "")


def check_document(
    path: str | Path, numbers: Mapping[str, Mapping[str, Any]], display: str | None = None
) -> list[Claim]:
    """Check every claim and span of one manuscript; raise :class:`ClaimError` listing every
    claim that does not hold (and every malformed span), else return the checked claims."""
    shown = display or str(path)
    claims, problems = find_claims(Path(path).read_text(encoding="utf-8"), shown)
    for claim in claims:
        try:
            claim.holds, claim.values = evaluate(claim.condition, numbers)
        except ClaimError as error:
            claim.holds, claim.problem = False, str(error)
        if not claim.holds:
            values = ", ".join(_shown(k, v, numbers) for k, v in claim.values.items())
            problems.append(
                f'{claim.where()}: the claim "{claim.text}" is not supported by the results: '
                + (claim.problem or f"{claim.condition} is false with {values}")
                + ". Reword the sentence (and its condition) or check the data."
            )
    if problems:
        raise ClaimError(
            f"{len(problems)} problem(s) with the manuscript's claims and spans:\n  " + "\n  ".join(problems)
        )
    return claims
