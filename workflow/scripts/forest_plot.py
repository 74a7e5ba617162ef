"""Snakemake script: forest plot of one analysis."""

from pathlib import Path

from metabuild.figures.forest import forest_plot
from metabuild.io import read_json

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

result = read_json(snakemake.input.result)
forest_plot(result, Path(snakemake.output.svg).with_suffix(""), max_table_studies=snakemake.params.max_table_studies)
