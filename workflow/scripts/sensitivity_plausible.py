"""Snakemake script: the pain analyses rerun on the plausible-bounds reconstruction.

The data files hold the reconstruction that reproduces the published pooled values, which
needs one implausibly small SD (see data/README.md). data/curation/ also fits the same
published values with every SD >= 1; this job reruns every pain analysis on that alternative
so the report can show how far the paper's conclusions depend on the implausible value.
Rows the fit does not know (a trial added since) enter unchanged, and the output names their
trials (metabuild.sensitivity).
"""

import copy

import pandas as pd

from metabuild.analysis import run_analysis
from metabuild.data import load_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance
from metabuild.review import continuous_outcomes
from metabuild.sensitivity import alternative_pain_scores

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

config = snakemake.config
dataset = load_dataset(config["data_dir"])
alternative = copy.deepcopy(dataset)
plausible = pd.read_csv(snakemake.input.plausible, dtype={"timepoint": str})
# trials the fit does not know (added since) enter as extracted: their data rows unchanged
alternative.pain_scores, trials = alternative_pain_scores(dataset.pain_scores, plausible)
labels = dataset.studies.set_index("study_id")["label"]
rows = []
# the analyses of the outcomes whose data file the alternative replaces
replaced = {name for name, o in continuous_outcomes(config).items() if o["file"] == "pain_scores.csv"}
for name, spec in config["analyses"].items():
    if spec["outcome"] not in replaced:
        continue
    pair = {
        label: run_analysis(name, spec, data, config) for label, data in (("data", dataset), ("plausible", alternative))
    }
    groups = [(name, "pooled", None)] + [
        (f"{name}.{s['level']}", "sub", s["level"]) for s in pair["data"].get("subgroups", [])
    ]
    for key, kind, level in groups:
        entry = {"key": key}
        for label, result in pair.items():
            pooled = (
                result["pooled"]
                if kind == "pooled"
                else next(s["pooled"] for s in result["subgroups"] if s["level"] == level)
            )
            entry[label] = {k: pooled[k] for k in ("estimate", "ci_lower", "ci_upper", "p", "i2")}
        rows.append(entry)
    if pair["data"].get("metareg"):
        rows.append({"key": f"{name}.metareg", **{label: {"p": r["metareg"].get("p")} for label, r in pair.items()}})
write_json(
    snakemake.output[0],
    {
        "rows": rows,
        "label": config["sensitivity"]["label"],  # also a param of the rule: a new label reruns the job
        # the refit's smallest SD among the rows used (all of them unless the data dropped some)
        "min_sd_plausible": float(plausible["sd"].min())
        if trials["min_sd_replaced"] is None
        else trials["min_sd_replaced"],
        "min_sd_data": float(dataset.pain_scores["sd"].min()),
        "trials": {
            kind: [{"study_id": s, "label": labels.get(s, s)} for s in trials[kind]]
            for kind in ("replaced", "as_extracted", "unused")
        },
        "provenance": job_provenance(snakemake),
    },
)
