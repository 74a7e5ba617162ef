"""Snakemake script: risk-of-bias traffic-light grid (overall derived from key domains)."""

from pathlib import Path

import pandas as pd

from metabuild.describe import derive_overall
from metabuild.figures.rob import risk_of_bias_grid

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

studies = pd.read_csv(snakemake.input.studies)
rob = pd.read_csv(snakemake.input.risk_of_bias)
labels = dict(zip(studies["study_id"], studies["label"], strict=True))
domains = dict(snakemake.params.domains)
rows = [
    {"study_label": labels[r.study_id], "domain": r.domain, "judgement": r.judgement}
    for r in rob.itertuples()
    if r.domain in domains
]
for study_id, group in rob.groupby("study_id", sort=False):
    judgements = dict(zip(group["domain"], group["judgement"], strict=True))
    overall = derive_overall(judgements, list(snakemake.params.key_domains))
    rows.append({"study_label": labels[study_id], "domain": "overall", "judgement": overall})
order = {sid: i for i, sid in enumerate(studies["label"])}
rows.sort(key=lambda r: order[r["study_label"]])
risk_of_bias_grid(
    rows,
    Path(snakemake.output.svg).with_suffix(""),
    domains=[*domains.items(), ("overall", "Overall (derived from key domains)")],
)
