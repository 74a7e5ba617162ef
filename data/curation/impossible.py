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


# ---------------------------------------------------------------- regimen summary
def _dose_rules(r: dict) -> dict[str, float]:
    """One trial's 'dose during the infusion' (mg/kg, 70-kg reference) under each rule tried."""
    unit, hours, days = r["rate_unit"], float(r["hours_total"]), float(r["days"])
    cap = float(r["rate_cap_mg_per_h"]) if r["rate_cap_mg_per_h"] else math.inf
    out = {}
    for which in ("max", "mean"):
        rate = float(r[f"rate_{which}"])
        if unit == "mg/kg/h":
            per_h = min(rate * 70, cap) / 70
            # a continuous infusion (Sigtermans: 100 h over 4.2 d) runs 24 h a day
            per_day = per_h * (24 if hours / days > 20 else hours / days)
            total = per_h * hours
        elif unit == "mg/kg":
            per_h, per_day, total = rate / hours, rate, rate
        else:  # mg/kg/d
            per_h, per_day, total = rate / 24, rate, rate * days
        out[f"Table 1 number ({which} rate)"] = rate
        out[f"per hour ({which} rate, cap applied)"] = per_h
        out[f"per day or session ({which} rate)"] = per_day
        out[f"cumulative per kg ({which} rate)"] = total
    return out


def _hours_rules(r: dict) -> dict[str, float]:
    hours, days = float(r["hours_total"]), float(r["days"])
    continuous = hours / days > 20  # Sigtermans: one infusion of 100 h over 4.2 d
    return {
        "total hours": hours,
        "hours per session (a continuous infusion is one session)": hours if continuous else hours / days,
        "hours per day (a continuous infusion counts 24 h)": 24.0 if continuous else hours / days,
    }


def regimen_search(st: list[dict]) -> list[str]:
    """Every rule x every subset of >= 3 of the article's trials: which give the printed
    median dose 0.35 mg/kg (0.23-0.6) and median duration 5 h (0.5-100 h), within rounding."""
    lines = ["## Regimen summary: every rule and trial subset tried", ""]
    ids = [r["study_id"] for r in st]
    subsets = [c for k in range(3, len(st) + 1) for c in itertools.combinations(range(len(st)), k)]
    for what, rules_of, targets in (
        ("dose (mg/kg)", _dose_rules, {"median": (0.35, 0.005), "min": (0.23, 0.005), "max": (0.6, 0.05)}),
        ("duration (h)", _hours_rules, {"median": (5.0, 0.5), "min": (0.5, 0.05), "max": (100.0, 0.5)}),
    ):
        per_trial = [rules_of(r) for r in st]
        rows = []
        for rule in per_trial[0]:
            vals = [p[rule] for p in per_trial]
            allv = sorted(vals)
            full = {"median": statistics.median(allv), "min": allv[0], "max": allv[-1]}
            hits = {"median": [], "all three": [], "loose": []}
            for sub in subsets:
                xs = [vals[i] for i in sub]
                got = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
                ok = {k: abs(got[k] - t) <= tol + 1e-9 for k, (t, tol) in targets.items()}
                if ok["median"]:
                    hits["median"].append(sub)
                if all(ok.values()):
                    hits["all three"].append(sub)
                # the same with the printed minimum taken one unit of its last decimal wider
                # (Table 1 prints Amr's rate as 0.22, the summary's minimum is 0.23)
                if ok["median"] and ok["max"] and abs(got["min"] - targets["min"][0]) <= 3 * targets["min"][1] + 1e-9:
                    hits["loose"].append(sub)

            def show(subs: list[tuple[int, ...]]) -> str:
                names = ["+".join(ids[i] for i in s) if len(s) < len(ids) else "all 7" for s in subs[:4]]
                return "; ".join(names) + (f" (+{len(subs) - 4} more)" if len(subs) > 4 else "")

            rows.append(
                f"| {rule} | {', '.join(f'{v:.3g}' for v in vals)} | {full['median']:.3g} "
                f"({full['min']:.3g}-{full['max']:.3g}) | {len(hits['median'])} | "
                f"{len(hits['all three'])}: {show(hits['all three']) or 'none'} | "
                f"{len(hits['loose'])}: {show(hits['loose']) or 'none'} |"
            )
        t = ", ".join(f"{k} {v:g}" for k, (v, _) in targets.items())
        lines += [
            f"### {what}: printed {t}",
            "",
            f"Trials in order: {', '.join(ids)}. {len(subsets)} subsets of >= 3 trials per rule.",
            "",
            "| rule | value per trial | all 7: median (range) | subsets with the printed median "
            "| subsets with median, min and max as printed | the same with the minimum one unit wider "
            "(0.22 accepted for 0.23; 0.4 for 0.5 h) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    return lines


def begg_p_values(k: int) -> dict[int, float]:
    """Every P value Stata's ``metabias, begg`` (continuity corrected; the project's
    ``metabuild.stats.bias.begg_test``) can print for k studies without tied variances or tied
    standardized effects: Kendall's S is k(k-1)/2 minus an even number, SD(S)^2 = k(k-1)(2k+5)/18
    and P = 2(1 - Phi((|S| - 1)/SD)). Returns {|S|: P}."""
    pairs = k * (k - 1) // 2
    sd = math.sqrt(k * (k - 1) * (2 * k + 5) / 18)
    return {s: (1.0 if s == 0 else float(2 * stats.norm.sf((s - 1) / sd))) for s in range(pairs % 2, pairs + 1, 2)}


def residuals_pain_section(title: str) -> str | None:
    """The section of output/residuals_pain.md whose heading starts with ``## title`` (None if the
    file or the section is missing: reconstruct_pain.py writes them)."""
    path = OUT / "residuals_pain.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if f"## {title}" not in text:
        return None
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def aimed_p_rows() -> dict[str, list[str]]:
    """The 'Aimed P values' table of residuals_pain.md: {key: [printed, chosen, published - chosen,
    within rounding, range over the exact solutions, exact solutions within rounding]}."""
    sec = residuals_pain_section("Aimed P values")
    if sec is None:
        return {}
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in sec.splitlines() if r.startswith("| `")]
    return {r[0].strip("`"): r[1:] for r in rows}


def egger_summary() -> str:
    """The Egger variants tried in reconstruct_pain.py (residuals_pain.md, 'Egger's test')."""
    sec = residuals_pain_section("Egger's test")
    if sec is None:
        return "(residuals_pain.md has no 'Egger's test' section: run reconstruct_pain.py)"
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in sec.splitlines() if r.startswith("| ")]
    rows = [r for r in rows if len(r) == 4 and r[0] != "variant" and not r[0].startswith("---")]
    build = next(r for r in rows if "the build" in r[0])
    others = [r for r in rows if r is not build]
    hit = [r[0] for r in others if r[3] == "yes"]
    listed = "; ".join(f"{r[0]} {r[2]}" for r in others)
    relax = next((r for r in sec.splitlines() if r.startswith("Continuous relaxation")), "")
    return (
        f"the build's test ({build[0]}) ranges {build[2]} over every exact solution, so it does "
        f"{'' if build[3] == 'yes' else 'not '}reach .423. {relax} Other definitions a reader could have used "
        f"(range over the exact solutions): {listed}; .423 lies within the range of "
        + (", ".join(hit) if hit else "none of them")
        + "."
    )


def pain_type_summary() -> str:
    """The codings of pain type tried in reconstruct_pain.py (residuals_pain.md, 'Pain type')."""
    sec = residuals_pain_section("Pain type")
    if sec is None:
        return "(residuals_pain.md has no 'Pain type' section: run reconstruct_pain.py)"
    rows = [r.split(" | ") for r in sec.splitlines() if r.startswith("| ") and not r.startswith("| coding")]
    rows = [r for r in rows if len(r) == 3 and not r[0].startswith("|---")]
    part = next((r for r in sec.splitlines() if r.startswith("Binary partitions")), "")
    ranges = [(r[0].lstrip("| "), r[2].rstrip(" |")) for r in rows]
    hit = [c for c, rg in ranges if float(rg.split("-")[0]) <= 0.7205 and float(rg.split("-")[1]) >= 0.7195]
    listed = "; ".join(f"{c} {rg}" for c, rg in ranges)
    verdict = f"reached by: {', '.join(hit)}" if hit else "no coding of Table 1's pain types tried reaches it"
    relax = next((r for r in sec.splitlines() if r.startswith("Continuous relaxation")), "")
    return f"{verdict} (P range over every exact solution of the script's grids: {listed}). {part} {relax}"


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
        ("tiredness", "tiredness RR 2.16 (0.64, 7.33)", True),
    ):
        p_item(prefix, label, log=log, ok=True)
    p_item("headache", "headache RR 1.26 (0.67, 2.34)", log=True, ok=True)

    def exhaustive_summary(name: str, het: str | None = None) -> str:
        """The summary line of ``reconstruct_binary.py --prove NAME`` (``_HET`` for the heterogeneity
        definition the data are not fitted with)."""
        file = f"{name}_exhaustive{'_' + het if het else ''}.md"
        path = OUT / file
        if not path.exists():
            flag = f" --heterogeneity {het}" if het else ""
            return f"(output/{file} not written yet: run reconstruct_binary.py --prove {name}{flag})"
        text = path.read_text(encoding="utf-8")
        rows = [r for r in text.splitlines() if r.startswith("| ") and not r.startswith("| trial set")]
        skipped = [r for r in rows if "not searched" in r]
        total = next((r for r in text.splitlines() if r.startswith("In all:")), "In all: incomplete run.")
        return (
            f"output/{file}: {len(rows) - len(skipped)} trial sets searched exhaustively, "
            f"{len(skipped)} not searched (too many tables); {total}"
        )

    consistent.append(
        (
            "`headache.p` (Results ¶ Adverse Effects; Figure 4C)",
            "P .475 with RR 1.26 (0.67-2.34)",
            "reproduced with RR and CI by one exact table (residuals_binary.md) when Cochran's Q is taken "
            "around the inverse-variance estimate, as Stata's `metan, randomi` and metafor's rma(method = "
            '"DL") do: the `rr_heterogeneity: iv` of the analyses in config/config.yaml. The P is the '
            "z-test P of the pooled log RR, 2(1 - Phi(|ln RR| / SE)), to 3 decimals (a P from a z rounded "
            f"to 2 decimals cannot give .475: z 0.71: {2 * stats.norm.sf(0.71):.4f}, 0.72: "
            f"{2 * stats.norm.sf(0.72):.4f}). With Q around the Mantel-Haenszel estimate (`metan, random`) "
            "no table of the 2- and 3-trial sets gives RR, both CI bounds and P .475 together: "
            + exhaustive_summary("headache", "mh"),
        )
    )
    items.append(
        (
            "`psychotomimetic.ci_upper` (Results ¶ Adverse Effects; Figure 4B)",
            "RR 5.92 (2.95-11.89)",
            "no table gives the RR and both CI bounds together. With Table 1's ketamine counts (Sigtermans "
            "23, Amr 3, Eichenberger 5, Mitchell 6) held fixed and any subset of the trials that may add to "
            "the pooled set (Noppers, quantities not noted; Schwartzman, dysphoria within a combined count of "
            "6; Salas reported none, a double-zero trial that drops out), every count the paper leaves open "
            "was tried, with Q around the inverse-variance estimate (the build's) - "
            + exhaustive_summary("psychotomimetic")
            + " - and around the Mantel-Haenszel estimate - "
            + exhaustive_summary("psychotomimetic", "mh")
            + " The printed P < .00001 is no further constraint (it follows from the RR and CI; the "
            "number of trials is not printed). The closest table has all 6 trials (Schwartzman included) and gives 5.92 "
            "(2.95-11.88); the data hold it (residuals_binary.md: the RR and the lower bound match, the "
            "upper bound misses by 0.013).",
        )
    )
    begg = begg_p_values(6)
    items.append(
        (
            "`bias.begg.p` (Results ¶ Publication Bias)",
            "P .380",
            "Begg's test on the 6 trials of the primary analysis (Stata metabias, continuity corrected) can "
            "only print, without tied ranks, P = "
            + ", ".join(f"{p:.3f}" for p in sorted(set(begg.values())))
            + " (|S| = 1, 3, ..., 15); .380 is not among them.",
        )
    )
    aimed = aimed_p_rows()
    met = [k for k in ("dose.metareg.p", "crps.metareg.p", "adjunct.metareg.p") if aimed.get(k, [""] * 4)[3] == "yes"]
    if met:
        consistent.append(
            (
                ", ".join(f"`{k}`" for k in met) + " (Results ¶ Dose-Response, ¶ Types of Pain; Abstract)",
                "P " + ", ".join(aimed[k][0].removeprefix("0") for k in met),
                "reproduced (REML meta-regression, Knapp-Hartung, Stata metareg's defaults) together with the 28 "
                "pooled values by the one data set in data/pain_scores.csv: "
                + "; ".join(
                    f"{k.split('.')[0]} {aimed[k][1]} (range over the exact solutions {aimed[k][4]})" for k in met
                )
                + " (residuals_pain.md, 'Aimed P values').",
            )
        )
    items.append(
        (
            "`pain_type.metareg.p` (Results ¶ Types of Pain); `bias.egger.p` (Results ¶ Publication Bias)",
            "P .720; .423",
            "aimed at jointly with the 28 pooled values and the other meta-regression P values "
            "(reconstruct_pain.py; residuals_pain.md, 'Aimed P values'). Not proven unreachable: no search over "
            "every 2-decimal data set was made; what follows is evidence. Egger .423: Stata 13, which the "
            "Methods name, has `metabias, egger`; " + egger_summary() + " Pain type .720: " + pain_type_summary(),
        )
    )
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
    regimen = regimen_search(st)
    items.append(
        (
            "`regimen.hours_median` (Results ¶ Ketamine Infusion Regimens)",
            "5 hours 'for all 7 studies'",
            "no rule gives it for the 7 trials: total hours give a median of 24 h, hours per session or per "
            "day 4 h (section 'Regimen summary' below: 3 rules x 99 subsets of trials). A median of 4.5-5 h "
            "appears only for subsets that leave trials out, against 'all 7 studies'. Range 0.5-100 h and "
            "days 1 (1-10) are consistent with total hours.",
        )
    )
    items.append(
        (
            "`regimen.rate_max_median`, `regimen.rate_max_min` (Results ¶ Ketamine Infusion Regimens)",
            "0.35 mg/kg (0.23-0.6)",
            "no rule (Table 1's number, per hour with the mg/h caps, per day or session, cumulative per kg; "
            "maximum or mean rate) gives median, minimum and maximum together for the 7 trials or for any "
            "subset of them (section 'Regimen summary' below, 8 rules x 99 subsets). The minimum 0.23 is "
            "nowhere in Table 1 (Amr's rate is printed 0.22); accepting 0.22 for it, Table 1's numbers with "
            "Sigtermans' mean rate give 0.35 (0.22-0.6) for 5 of the 7 trials (Noppers and Salas left out). "
            "Table 1 prints no bolus doses, so 'bolus included or not' cannot be tried from the paper.",
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
        "Not listed: values that are reproducible but only under an assumption (e.g. the headache and",
        "tiredness RRs, whose trial sets are not printed; see residuals_binary.md). The Begg and Egger",
        "tests are listed although the Methods say they need >= 10 trials and they were run on 6.",
        "",
    ]
    for what, printed, reason in items:
        lines.append(f"- **{what}** - printed {printed}: {reason}")
    lines += ["", "## Checked and consistent (for comparison)", ""]
    for what, printed, reason in consistent:
        lines.append(f"- {what} - printed {printed}: {reason}")
    lines += [
        "- The other '<' P values (primary, high dose, neuropathic/mixed, CRPS, week 2, psychotomimetic) "
        "agree with their CIs.",
        "",
        *regimen,
    ]
    text = "\n".join(lines) + "\n"
    (OUT / "impossible.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
