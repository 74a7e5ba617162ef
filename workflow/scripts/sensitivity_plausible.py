"""Snakemake script: the pain analyses rerun on the plausible-bounds reconstruction.

The data files hold the reconstruction that reproduces the published pooled values, which
needs one implausibly small SD (see data/README.md). data/curation/ also fits the same
published values with every SD >= 1; this job reruns every pain analysis on that alternative
so the report can show how far the paper's conclusions depend on the implausible value.
"""

import copy

import pandas as pd

from metabuild.analysis import run_analysis
from metabuild.data import load_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

config = snakemake.config
dataset = load_dataset(config["data_dir"])
alternative = copy.deepcopy(dataset)
plausible = pd.read_csv(snakemake.input.plausible)
plausible["primary"] = plausible["primary"].astype(str).str.lower() == "true"
plausible["window_weeks"] = pd.to_numeric(plausible["window_weeks"], errors="coerce").astype("Int64")
plausible["_row"] = range(2, len(plausible) + 2)
alternative.pain_scores = plausible
rows = []
for name, spec in config["analyses"].items():
    if spec["outcome"] != "pain":
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
smallest = plausible.groupby("study_id")["sd"].min()
write_json(
    snakemake.output[0],
    {
        "rows": rows,
        "label": config["sensitivity"]["label"],
        "min_sd_plausible": float(smallest.min()),
        "min_sd_data": float(dataset.pain_scores["sd"].min()),
        "provenance": job_provenance(snakemake),
    },
)
