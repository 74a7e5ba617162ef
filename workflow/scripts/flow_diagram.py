"""Snakemake script: PRISMA flow diagram from the stage counts."""

from pathlib import Path

from metabuild.figures.flow import prisma_flow
from metabuild.io import read_json

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

numbers = read_json(snakemake.input.flow)["numbers"]
counts = {key.removeprefix("flow."): entry["value"] for key, entry in numbers.items()}
counts.setdefault("included_qualitative", counts["included"])
counts.setdefault("included_quantitative", counts["included"])
prisma_flow(counts, Path(snakemake.output.svg).with_suffix(""))
