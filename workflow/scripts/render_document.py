"""Snakemake script: render one manuscript document to HTML, DOCX and PDF, and record which
engine (and which Quarto or pandoc, and Typst) made them, in the log and in the job's provenance."""

import os
from pathlib import Path

from metabuild.io import write_json
from metabuild.provenance import job_provenance
from metabuild.render import engine_info, render_document

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

qmd = Path(snakemake.input.qmd)
engine = engine_info(snakemake.params.engine)  # "auto" resolved: Quarto when on PATH
versions = ", ".join(f"{k} {v}" for k, v in engine.items() if k not in ("engine", "quarto_path"))
where = f" at {engine['quarto_path']}" if "quarto_path" in engine else ""
print(
    f"rendering {qmd} ({snakemake.params.variant}) with the {engine['engine']} engine ({versions}){where}", flush=True
)
outputs = render_document(
    qmd,
    Path(snakemake.output[0]).parent,
    formats=tuple(snakemake.params.formats),
    numbers_file=Path(snakemake.input.numbers),
    engine=engine["engine"],
    variant=snakemake.params.variant,
    reference_docx=Path(snakemake.input.reference_docx[0]) if snakemake.input.reference_docx else None,
    line_numbers=snakemake.params.line_numbers,
    provenance_href=snakemake.params.provenance_href,
    landscape=snakemake.params.landscape if snakemake.params.variant == "submission" else (),
    typst_template=Path(snakemake.input.typst_template[0]) if snakemake.input.typst_template else None,
)
provenance = job_provenance(snakemake)
# without the Quarto's path: two builds on two machines record the same provenance
provenance["engine"] = {k: v for k, v in engine.items() if k != "quarto_path"}
outputs = {fmt: os.path.relpath(path) for fmt, path in outputs.items()}
write_json(snakemake.output.provenance, {"document": str(qmd), "outputs": outputs, "provenance": provenance})
