"""List the published values that no data set can give, with the reason, computed.

Each check takes the printed numbers (data/published_values.csv), varies every printed value
over its rounding interval, and reports the range the rest of the paper implies. Writes
data/curation/output/impossible.md.

Run:  python data/curation/impossible.py
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, OUT, published_for, read_published  # noqa: E402

from metabuild.report import published_trials  # noqa: E402

PUBS = read_published()
Z = stats.norm.ppf(0.975)


def val(key: str, loc: str | None = None) -> tuple[float, float]:
    p = published_for(PUBS, key, loc)[0]
    return p.value, p.tol


def p_range(prefix: str, log: bool = False, loc: str | None = None, upper_override: float | None = None):
    """Range of the two-sided Wald P implied by estimate and CI anywhere inside their rounding."""
    e, te = val(f"{prefix}.estimate", loc)
    lo, tl = val(f"{prefix}.ci_lower", loc)
    hi, th = val(f"{prefix}.ci_upper", loc)
    if upper_override is not None:
        hi = upper_override
    ps = []
    for de, dl, dh in itertools.product(np.linspace(-1, 1, 11), repeat=3):
        ee, ll, hh = e + de * te, lo + dl * tl, hi + dh * th
        if log:
            if ll <= 0:
                continue
            ee, ll, hh = math.log(ee), math.log(ll), math.log(hh)
        se = (hh - ll) / (2 * Z)
        if se <= 0:
            continue
        ps.append(2 * stats.norm.sf(abs(ee / se)))
    return min(ps), max(ps)


def midpoint_check(prefix: str):
    e, te = val(f"{prefix}.estimate")
    lo, _ = val(f"{prefix}.ci_lower")
    hi, _ = val(f"{prefix}.ci_upper")
    return (lo + hi) / 2, e


def main() -> None:
    items: list[tuple[str, str, str]] = []  # (what, printed, reason)

    consistent: list[tuple[str, str, str]] = []

    def p_item(prefix, label, loc=None, log=False, upper=None, extra="", ok=False):
        pub = published_for(PUBS, f"{prefix}.p", loc)[0]
        a, b = p_range(prefix, log=log, loc=loc, upper_override=upper)
        (consistent if ok else items).append(
            (
                f"`{prefix}.p` ({pub.location})",
                f"P {pub.printed}",
                f"{label}: the printed estimate and 95% CI (each anywhere inside its rounding) imply a "
                f"Wald P between {a:.2g} and {b:.2g}{extra}.",
            )
        )

    p_item("dose.low", "low dose −1.30 (−2.01, −0.59)")
    p_item("pain_type.non_neuropathic", "non-neuropathic −1.97 (−3.04, −0.90)")
    p_item(
        "crps.non_crps",
        "non-CRPS −1.71 (−2.01, −1.41)",
        extra=" - far smaller than .001 ('P = .001' is true only as a bound)",
    )
    p_item("nausea", "nausea RR 3.52 (1.74, 7.14), on the log scale", log=True)
    mid, e = midpoint_check("week8")
    items.append(
        (
            "`week8.ci_upper` (Results ¶ Time Points)",
            "−0.40",
            f"a DerSimonian-Laird CI is symmetric about the estimate; (−1.75, −0.40) has midpoint {mid:.3f}, "
            f"not the printed estimate {e:.2f}, and lies wholly below 0 although the text calls the result "
            "nonsignificant. With +0.40 the midpoint is −0.675 = −0.68: a lost minus sign. The reconstruction "
            "fits +0.40.",
        )
    )
    p_item(
        "week8",
        "8 wk −0.68 (−1.75, +0.40 corrected)",
        upper=0.40,
        extra="; with the printed −0.40 the CI would imply P < .05",
    )
    for prefix, label, log in (
        ("week4", "4 wk −0.74 (−1.88, 0.41)", False),
        ("week12", "12 wk −0.55 (−1.50, 0.39)", False),
        ("responders", "responders RR 2.43 (1.10, 5.40)", True),
        ("headache", "headache RR 1.26 (0.67, 2.34)", True),
        ("tiredness", "tiredness RR 2.16 (0.64, 7.33)", True),
    ):
        p_item(prefix, label, log=log, ok=True)
    items.append(
        (
            "`primary.i2` (Results ¶ Heterogeneity; Table 2 footnote b)",
            "45.9%",
            "the same 6-trial analysis is printed with I2 = 48.5% in Results ¶ Pain Scores; one data set "
            "gives one I2. The reconstruction fits 48.5% (the value printed with the estimate and CI) and "
            "reproduces 48.5; 45.9% cannot be reproduced together with it.",
        )
    )
    items.append(
        (
            "`responders.percent_ketamine` (Abstract; Results; Table 2)",
            "51.3%",
            f"Table 2 prints 17/33, which is {100 * 17 / 33:.2f}%; the control figure 19.4% is the raw 6/31 "
            f"= {100 * 6 / 31:.2f}%. The unique responder data set that reproduces RR, CI, P and I2 "
            "(reconstruct_binary.py) gives a pooled Freeman-Tukey proportion of 51.5%, not 51.3%, either.",
        )
    )
    q_max = 2.0  # I2 = 0 means Q <= df = 2
    items.append(
        (
            "`week2.q_p` (Table 2 footnote g)",
            "P = .02",
            f"the 2-wk analysis has I2 = 0.0%, i.e. Q <= df = 2, so the heterogeneity P is at least "
            f"{stats.chi2.sf(q_max, 2):.3f}; P = .02 needs Q = {stats.chi2.isf(0.02, 2):.2f} (I2 = "
            f"{100 * (stats.chi2.isf(0.02, 2) - 2) / stats.chi2.isf(0.02, 2):.0f}%).",
        )
    )
    items.append(
        (
            "`grade.primary.certainty` (Table 2 row 1)",
            "LOW",
            "row 1 is downgraded for very serious risk of bias (−2) and serious indirectness (−1) from high "
            "certainty for randomized trials, which gives VERY LOW; LOW needs one of the two to be lifted "
            "(footnote b, an inconsistency reason, is also attached to the indirectness judgement).",
        )
    )
    n1 = lambda d: 2 * (stats.norm.isf(0.025) + stats.norm.isf(0.10)) ** 2 * 4 / d**2  # noqa: E731
    items.append(
        (
            "`sample_size.n_small`, `sample_size.n_large` (Methods)",
            "40 or 86 per group, 'respectively'",
            f"with SD 2.0, two-sided alpha .05 and power .90, detecting 1 point needs {n1(1):.1f} -> "
            f"{math.ceil(n1(1))} per group (86 with the t-distribution) and 1.5 points needs {n1(1.5):.1f} -> "
            f"{math.ceil(n1(1.5))} (about 39-40 with t): the numbers are swapped relative to 'respectively'.",
        )
    )
    # regimen medians from Table 1 (studies.csv): the published article's trials only, a trial
    # added to the data since is not in its Table 1
    article = set(published_trials(pd.read_csv(DATA / "published_values.csv", dtype=str, keep_default_na=False)) or [])
    with (DATA / "studies.csv").open(encoding="utf-8") as f:
        st = list(csv.DictReader(f))
    for r in st:
        if article and r["study_id"] not in article:
            print(f"{r['study_id']}: not a trial of the published article (its Table 1); left out of the regimen check")
    st = [r for r in st if not article or r["study_id"] in article]
    for study in sorted(article - {r["study_id"] for r in st}):
        print(f"{study}: a trial of the published article that data/studies.csv no longer holds (regimen check)")
    hours = [float(r["hours_total"]) for r in st]
    per_day = {"amr2010": 5, "schwartzman2009": 4}
    hours_day = [per_day.get(r["study_id"], float(r["hours_total"])) for r in st]
    items.append(
        (
            "`regimen.hours_median` (Results ¶ Ketamine Infusion Regimens)",
            "5 hours",
            f"Table 1 durations give a median of {statistics.median(hours):g} h (total hours: "
            f"{sorted(hours)}) or {statistics.median(hours_day):g} h (hours per day/session: "
            f"{sorted(hours_day)}); 5 h needs Amr counted per day (5 h) and Schwartzman in total (40 h) - "
            "no single rule gives it. Range 0.5-100 h and days 1 (1-10) are consistent.",
        )
    )
    items.append(
        (
            "`regimen.rate_max_median`, `regimen.rate_max_min` (Results ¶ Ketamine Infusion Regimens)",
            "0.35 mg/kg (0.23-0.6)",
            "Table 1 rates (Amr 0.22, Eichenberger 0.4, Salas 0.5 mg/kg/d, Schwartzman 0.35, Sigtermans "
            "0.43 max / 0.32 mean, Noppers 0.5, Mitchell 0.6) give a median of 0.40-0.43 (Salas excluded: "
            "0.375-0.39); a median of 0.35 needs Salas on an hourly scale (0.02), which then makes the "
            "minimum 0.02, not 0.23. Amr's 80 mg over 5 h for 70 kg is 0.229 (0.23) but Table 1 prints "
            "0.22. No single rule gives median and range together (pipeline to confirm).",
        )
    )
    items.append(
        (
            "`studies.participants` (Abstract; Results ¶ Search)",
            "211",
            "Table 1 randomised totals sum to 218 (40+20+20+19+60+24+35). 211 = 108 + 103 = Table 2's "
            "97 + 94 plus Salas 11 + 9, i.e. Eichenberger counted as 8 + 5 = 13 analysed at 48 h. "
            "Reproducible only with that inferred analysed n; 'randomly assigned 211' is not.",
        )
    )
    items.append(
        (
            "`flow.records_identified` (Abstract)",
            "696 'assessed for eligibility'",
            "696 were records identified (Results ¶ Search Results); 30 full texts were assessed.",
        )
    )
    items.append(
        (
            "`setting.outpatient` refs (Results ¶ Heterogeneity)",
            "refs 23, 24",
            "Table 1: outpatient trials are Schwartzman (24) and Noppers (28); Sigtermans (23) is inpatient "
            "and is also listed among the inpatient trials. The count 2 is right.",
        )
    )
    items.append(
        (
            "Results ¶ Time Points, summary sentence",
            "significant at 2 and 8 weeks",
            "the 8-week result is printed as nonsignificant (P = .174, and ≈ .21 from its corrected CI).",
        )
    )
    items.append(
        (
            "`week2.n_high_risk` (Table 2 footnote f, row 3)",
            "one trial with high risk of bias",
            "Figure 2 rates 2 of the 3 week-2 trials (Sigtermans 23, Amr 27) high overall; footnote f fits "
            "the nausea row (only Sigtermans high).",
        )
    )
    items.append(
        (
            "`responders.n_high_risk` (Table 2 footnote c)",
            "2 trials high risk",
            "of the responder trials (Salas 25, Eichenberger 26, Noppers 28) Figure 2 rates only Noppers high overall.",
        )
    )
    items.append(
        (
            "`nausea.n_trials_footnote` (Table 2 footnote h)",
            "'Both trials'",
            "the nausea row has 3 trials (49 vs 50 patients = Sigtermans + Schwartzman + Eichenberger).",
        )
    )
    items.append(
        (
            "`pain_type.non_neuropathic.n_lower` (Results ¶ Types of Pain)",
            "1 of 3 trials",
            "the Dose-Response ¶ and Table 1 say Mitchell (29), a non-neuropathic trial, also reported "
            "benefit: 2 of 3.",
        )
    )
    items.append(
        (
            "`bias.n_blinding_assessed` refs",
            "23, 28 (Results) vs 24, 26 (Discussion)",
            "the two trials that assessed blinding are named differently in two places.",
        )
    )
    lines = [
        "# Published values no data set can give",
        "",
        "Generated by `data/curation/impossible.py` from data/published_values.csv and data/studies.csv.",
        "Each item: the printed value, where, and why no study-level data set can reproduce it together",
        "with the rest of the paper. P ranges vary estimate and CI bounds over their rounding intervals.",
        "Not listed: values that are reproducible but only under an assumption (e.g. the psychotomimetic",
        "RR, see residuals_binary.md), and the Begg/Egger tests, which the Methods say need >= 10 trials",
        "but were run on 6 (reproducible, but against the paper's own rule).",
        "",
    ]
    for what, printed, reason in items:
        lines.append(f"- **{what}** - printed {printed}: {reason}")
    lines += ["", "## Checked and consistent (for comparison)", ""]
    for what, printed, reason in consistent:
        lines.append(f"- {what} - printed {printed}: {reason}")
    lines += [
        "- The other '<' P values (primary, high dose, neuropathic/mixed, CRPS, week 2, psychotomimetic) "
        "agree with their CIs."
    ]
    text = "\n".join(lines) + "\n"
    (OUT / "impossible.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
