"""Snakemake script: Table 2, the GRADE evidence profile."""

import pandas as pd

from metabuild.io import read_json, write_json, write_text
from metabuild.provenance import job_provenance
from metabuild.tables import markdown_table, table2_grade

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

grade = pd.read_csv(snakemake.input.grade, keep_default_na=False, na_values=[""])
results = {r["analysis"]: r for r in map(read_json, snakemake.input.results)}
frame, notes, numbers = table2_grade(grade, results, snakemake.params.outcomes)
write_text(snakemake.output.md, markdown_table(frame, notes))
write_text(snakemake.output.csv, frame.to_csv(index=False, lineterminator="\n"))
rows = {"grade.csv": [i + 2 for i in range(len(grade))]}
write_json(
    snakemake.output.numbers,
    {"topic": "grade", "numbers": numbers, "provenance": job_provenance(snakemake, data_rows=rows)},
)
