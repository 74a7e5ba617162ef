"""Snakemake script: risk-of-bias traffic-light grid (overall derived from key domains)."""

from pathlib import Path

import pandas as pd

from metabuild.describe import risk_of_bias_rows
from metabuild.figures.rob import risk_of_bias_grid

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

domains = dict(snakemake.params.domains)
rows = risk_of_bias_rows(
    pd.read_csv(snakemake.input.studies),
    pd.read_csv(snakemake.input.risk_of_bias),
    domains,
    list(snakemake.params.key_domains),
)
risk_of_bias_grid(
    rows,
    Path(snakemake.output.svg).with_suffix(""),
    domains=[*domains.items(), ("overall", "Overall (derived from key domains)")],
)
