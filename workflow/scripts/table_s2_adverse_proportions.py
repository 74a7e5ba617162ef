"""Snakemake script: Supplemental Table 2, pooled incidence of adverse effects."""

from metabuild.io import read_json, write_text
from metabuild.tables import markdown_table, table_s2

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

frame = table_s2([read_json(p) for p in snakemake.input.results])
note = (
    "Proportions pooled on the Freeman-Tukey double arcsine scale without continuity correction "
    "(DerSimonian-Laird), back-transformed with Miller's inverse at the harmonic mean of the arm sizes."
)
write_text(snakemake.output.md, markdown_table(frame, [note]))
write_text(snakemake.output.csv, frame.to_csv(index=False, lineterminator="\n"))
