"""The paper's tables as Markdown pipe tables (included by the manuscript) and CSV."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from metabuild import escape
from metabuild.formatting import format_number, format_p
from metabuild.review import result_arms

CERTAINTY = {4: "High", 3: "Moderate", 2: "Low", 1: "Very low"}
DOWNGRADE = {"not serious": 0, "none": 0, "serious": 1, "very serious": 2}


def _cell(text: Any) -> str:
    """A table cell: data text escaped (:func:`metabuild.escape.markdown`, which also escapes
    ``|``), markup the code built (:class:`~metabuild.escape.Markup`) as it is."""
    return escape.markdown(text)


def column_widths(frame: pd.DataFrame, total: int = 100) -> list[int]:
    """Relative column widths from the content, as the dashes of a pipe table's rule line (pandoc
    sizes the columns of a table wider than the text by their dash counts, in DOCX, PDF and HTML).

    A column gets at least its longest word (no word is broken: "Populat-ion"; a header word
    counts a character more for its bold type), and a third as much again
    is shared out by typical text length (the square root of the mean cell length, so one long
    column does not starve the others). The word floor comes first because a table is printed in
    a fixed width: a share of the slack can be small, but a column narrower than its longest word
    breaks that word. The floor also counts the cell's padding (about two characters at table
    type size), which a narrow column of short numbers would otherwise not have room for."""
    longest_word, typical = [], []
    for name in frame.columns:
        cells = [str(v) for v in frame[name]]
        header = max((len(w) + 1 for w in str(name).split()), default=1)
        longest_word.append(2 + max([header, *(len(w) for t in cells for w in t.split())]))
        texts = [str(name), *cells]
        typical.append(math.sqrt(sum(len(t) for t in texts) / len(texts)))
    floor = sum(longest_word)
    weights = [w + (floor / 3 * t / sum(typical)) for w, t in zip(longest_word, typical, strict=True)]
    scale = total / sum(weights) * 2
    return [max(3, round(w * scale)) for w in weights]


def markdown_table(frame: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """A pipe table (pandoc and Quarto both read it), followed by note paragraphs.

    Every cell, column name and note is text and is escaped, except
    :class:`~metabuild.escape.Markup` the code built (a citation, a footnote mark)."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(":" + "-" * n for n in column_widths(frame)) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    text = "\n".join([header, rule, *body]) + "\n"
    if notes:
        # a Div, so the manuscript's cross-reference filters do not take the notes for the caption
        text += "\n::: {.table-notes}\n" + "\n\n".join(_cell(n) for n in notes) + "\n:::\n"
    return text


def characteristics_table(studies: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Characteristics of the included trials: the trial (its label and citation), then one
    column per entry of ``columns`` (printed header -> studies.csv column), in that order."""
    rows = []
    for s in studies.itertuples():
        cite = escape.citation(s.citation_key)
        row: dict[str, Any] = {
            "Trial": escape.Markup(f"{s.label} {cite}", f"{escape.markdown(s.label)} {cite.markdown}")
        }
        for header, column in columns.items():
            value = getattr(s, column)
            row[header] = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        rows.append(row)
    # object columns: the Trial cells keep their Markup type (the citation stays a citation)
    return pd.DataFrame(rows, dtype=object)


def _events(pooled: Mapping[str, Any], arm: str) -> str:
    """``events/n (percent)`` of one arm of a pooled binary outcome."""
    percent = format_number(pooled[f"percent_{arm}"], "percent")
    return f"{pooled[f'events_{arm}']}/{pooled[f'n_{arm}']} ({percent})"


def certainty(judgements: Mapping[str, str]) -> str:
    """GRADE certainty: randomised trials start High; each serious concern lowers it one
    level, each very serious concern two (floor Very low)."""
    level = 4 - sum(DOWNGRADE[j] for j in judgements.values())
    return CERTAINTY[max(1, level)]


#: a number in a GRADE footnote template: {name}, {name:word}, {name:word:noun} or
#: {name:word:noun:plural}; ``name`` is a registry number of the outcome's analysis
FOOTNOTE_NUMBER = re.compile(
    r"\{(?P<name>[a-z][a-z0-9_]*)(?::(?P<word>word))?(?::(?P<noun>[a-z]+))?(?::(?P<plural>[a-z]+))?\}"
)


def markdown_text(text: str) -> str:
    """Text that pandoc's Markdown reader reads back literally (:func:`metabuild.escape.markdown`),
    runs of white space folded to one space."""
    return escape.markdown(re.sub(r"\s+", " ", str(text)))


def footnote_markdown(template: str, analysis: str, known: Sequence[str], where: str) -> str:
    """A GRADE footnote as Markdown: its words as literal text, each ``{name}`` a registry span
    ``[<analysis>.<name>]{.num}`` (so the number follows the data and is traced like any other).
    ``known`` lists the names the outcome's analysis has; ``where`` names the data cell for errors."""
    parts, last = [], 0
    for m in FOOTNOTE_NUMBER.finditer(template):
        if m["name"] not in known:
            raise ValueError(
                f"{where}: the footnote names {{{m['name']}}}, which the analysis {analysis!r} does not report "
                f"(it has: {', '.join(sorted(known))})"
            )
        classes = ".num" + (" .word" if m["word"] else "")
        noun = f' noun="{m["noun"]}"' if m["noun"] else ""
        plural = f' plural="{m["plural"]}"' if m["plural"] else ""
        parts += [markdown_text(template[last : m.start()]), f"[{analysis}.{m['name']}]{{{classes}{noun}{plural}}}"]
        last = m.end()
    parts.append(markdown_text(template[last:]))
    return "".join(parts).strip()


def n_nonoverlapping(studies: Sequence[Mapping[str, Any]]) -> int:
    """How many studies have a CI that does not overlap the CI of at least one other study
    (the usual reading of "studies with non-overlapping CIs" in a GRADE inconsistency note)."""
    cis = [(s["ci_lower"], s["ci_upper"]) for s in studies if s.get("ci_lower") is not None]
    return sum(any(hi < lo2 or hi2 < lo for lo2, hi2 in cis) for lo, hi in cis)


def grade_numbers(result: Mapping[str, Any], overall_risk: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Numbers GRADE footnotes cite that the analysis itself does not report: trials of the
    analysis at high overall risk of bias, and trials with non-overlapping CIs."""
    name = result["analysis"]
    pooled_ids = [s["study_id"] for s in result["studies"] if s.get("estimate") is not None]
    return {
        f"{name}.n_high_risk": {"value": sum(overall_risk.get(i) == "high" for i in pooled_ids), "kind": "count"},
        f"{name}.n_nonoverlapping": {"value": n_nonoverlapping(result["studies"]), "kind": "count"},
    }


def grade_profile(
    grade: pd.DataFrame,
    risk_of_bias: pd.DataFrame,
    results: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Mapping[str, str]],
    key_domains: Sequence[str],
    grade_path: str = "grade.csv",
    measure_note: str | None = None,
) -> tuple[pd.DataFrame, list[str], dict]:
    """Table 2 from the data and the analyses: the overall risk of bias of each trial (from the
    key domains), the numbers only this table reports (:func:`grade_numbers`), and the profile
    whose footnotes may cite any registry number of their outcome's analysis."""
    from metabuild.describe import derive_overall

    overall = {
        sid: derive_overall(dict(zip(g["domain"], g["judgement"], strict=True)), list(key_domains))
        for sid, g in risk_of_bias.groupby("study_id")
    }
    numbers: dict[str, dict] = {}
    for result in results.values():
        numbers |= grade_numbers(result, overall)
    footnote_numbers = {
        name: [k.removeprefix(f"{name}.") for k in (*result["numbers"], *numbers) if k.startswith(f"{name}.")]
        for name, result in results.items()
    }
    frame, notes, certainty = table2_grade(
        grade, results, outcomes, footnote_numbers, grade_path=grade_path, measure_note=measure_note
    )
    return frame, notes, numbers | certainty


def table2_grade(
    grade: pd.DataFrame,
    results: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Mapping[str, str]],
    footnote_numbers: Mapping[str, Sequence[str]] | None = None,
    grade_path: str = "grade.csv",
    measure_note: str | None = None,
) -> tuple[pd.DataFrame, list[str], dict]:
    """GRADE evidence profile: judgements from data, patients and effects from analyses.

    Footnotes are templates (:func:`footnote_markdown`); ``footnote_numbers`` gives, per
    analysis, the registry names a footnote may cite. Footnotes whose Markdown is the same share
    one letter."""
    rows, notes, numbers = [], [], {}
    footnotes: dict[str, str] = {}
    for outcome_id, spec in outcomes.items():
        g = grade[grade["outcome_id"] == outcome_id]
        judgements = dict(zip(g["domain"], g["judgement"], strict=True))
        marks = {}
        for d in g.itertuples():
            template = "" if pd.isna(d.footnote) else str(d.footnote).strip()
            if template:
                where = f"{grade_path}, row {d.Index + 2}, column footnote"
                known = (footnote_numbers or {}).get(spec["analysis"], ())
                note = footnote_markdown(template, spec["analysis"], known, where)
                letter = footnotes.setdefault(note, chr(ord("a") + len(footnotes)))
                marks[d.domain] = escape.Markup(f"^{letter}^", f"^{letter}^")
        result = results[spec["analysis"]]
        pooled = result["pooled"]
        (t, t_label), (c, c_label) = ((a["id"], a["label"]) for a in result_arms(result))
        if result["measure"] == "RR":
            treat = _events(pooled, t)
            ctrl = _events(pooled, c)
            effect = (
                f"RR {format_number(pooled['estimate'], 'ratio')} "
                f"({format_number(pooled['ci_lower'], 'ratio')} to {format_number(pooled['ci_upper'], 'ratio')})"
            )
        else:
            treat, ctrl = str(pooled[f"n_{t}"]), str(pooled[f"n_{c}"])
            effect = (
                f"MD {format_number(pooled['estimate'], 'estimate')} "
                f"({format_number(pooled['ci_lower'], 'estimate')} to {format_number(pooled['ci_upper'], 'estimate')})"
            )
        level = certainty({k: v for k, v in judgements.items()})
        rows.append(
            {
                "Outcome": spec["label"],
                "Studies": str(pooled["k"]),
                "Risk of bias": _marked(judgements.get("risk_of_bias", ""), marks.get("risk_of_bias")),
                "Inconsistency": _marked(judgements.get("inconsistency", ""), marks.get("inconsistency")),
                "Indirectness": _marked(judgements.get("indirectness", ""), marks.get("indirectness")),
                "Imprecision": _marked(judgements.get("imprecision", ""), marks.get("imprecision")),
                "Other": _marked(judgements.get("other", ""), marks.get("other")),
                t_label: treat,
                c_label: ctrl,
                "Effect (95% CI)": effect,
                "Certainty": level,
            }
        )
        numbers[f"grade.{outcome_id}.certainty"] = {"value": level, "kind": "constant"}
    notes.append(
        "All studies are randomised trials. Certainty starts at High and is lowered one level for "
        "each serious and two for each very serious concern. "
        + (measure_note or "MD, mean difference; RR, relative risk.")
    )
    # the footnotes are Markdown already (footnote_markdown escaped their words)
    notes += [escape.Markup(f"^{letter}^ {note}", f"^{letter}^ {note}") for note, letter in footnotes.items()]
    return pd.DataFrame(rows, dtype=object), notes, numbers


def _marked(judgement: str, mark: escape.Markup | None) -> str:
    """A GRADE judgement (data text) followed by its footnote mark (markup), if any."""
    if mark is None:
        return judgement
    return escape.Markup(judgement + mark, escape.markdown(judgement) + mark.markdown)


def table_s2(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Pooled incidence of adverse effects per arm (Freeman-Tukey double arcsine, DL)."""
    rows = []
    for result in results:
        props = result["proportions"]

        def cell(arm: str, props: Mapping[str, Any] = props) -> str:
            p = props[arm]
            return (
                f"{format_number(100 * p['proportion'], 'percent')} "
                f"({format_number(100 * p['ci_lower'], 'percent')} to {format_number(100 * p['ci_upper'], 'percent')})"
            )

        pooled = result["pooled"]
        (t, t_label), (c, c_label) = ((a["id"], a["label"]) for a in result_arms(result))
        rows.append(
            {
                "Adverse effect": result["title"],
                "Studies": str(pooled["k"]),
                f"{t_label}, events/patients": f"{pooled[f'events_{t}']}/{pooled[f'n_{t}']}",
                f"{t_label}, pooled % (95% CI)": cell(t),
                f"{c_label}, events/patients": f"{pooled[f'events_{c}']}/{pooled[f'n_{c}']}",
                f"{c_label}, pooled % (95% CI)": cell(c),
                "RR (95% CI)": (
                    f"{format_number(pooled['estimate'], 'ratio')} ({format_number(pooled['ci_lower'], 'ratio')}"
                    f" to {format_number(pooled['ci_upper'], 'ratio')})"
                ),
                "P": format_p(pooled["p"]).replace("= ", ""),
            }
        )
    return pd.DataFrame(rows)
