"""Snakemake script: render one manuscript document to HTML, DOCX and PDF."""

from pathlib import Path

from metabuild.render import render_document

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

outdir = Path(snakemake.output[0]).parent
render_document(
    Path(snakemake.input.qmd),
    outdir,
    formats=tuple(snakemake.params.formats),
    numbers_file=Path(snakemake.input.numbers),
    engine=snakemake.params.engine,
)
