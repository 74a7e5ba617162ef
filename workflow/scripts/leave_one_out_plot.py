"""Snakemake script: leave-one-out sensitivity plot of the primary analysis."""

from pathlib import Path

from metabuild.figures.forest import leave_one_out_plot
from metabuild.io import read_json
from metabuild.review import favours

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

result = read_json(snakemake.input.result)
leave_one_out_plot(
    result["leave_one_out"],
    result["pooled"],
    Path(snakemake.output.svg).with_suffix(""),
    measure=result["measure"],
    favours=favours(snakemake.config),
)
