"""Snakemake script: Table 2, the GRADE evidence profile.

Footnotes in data/grade.csv are templates: a ``{name}`` is the registry number ``<analysis>.<name>``
of the outcome's analysis (see metabuild.tables.footnote_markdown), so the printed counts follow
the data. The numbers only this table reports (trials at high risk of bias, trials with
non-overlapping CIs) are registry numbers too (results/descriptive/grade.json).
"""

import pandas as pd

from metabuild.io import read_json, write_json, write_text
from metabuild.provenance import job_provenance
from metabuild.tables import grade_profile, markdown_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

grade = pd.read_csv(snakemake.input.grade, keep_default_na=False, na_values=[""])
rob = pd.read_csv(snakemake.input.risk_of_bias, keep_default_na=False)
results = {r["analysis"]: r for r in map(read_json, snakemake.input.results)}
frame, notes, numbers = grade_profile(
    grade,
    rob,
    results,
    snakemake.params.outcomes,
    snakemake.params.key_domains,
    grade_path=snakemake.input.grade,
    measure_note=snakemake.params.measure_note,
)
write_text(snakemake.output.md, markdown_table(frame, notes))
write_text(snakemake.output.csv, frame.to_csv(index=False, lineterminator="\n"))
rows = {"grade.csv": [i + 2 for i in range(len(grade))], "risk_of_bias.csv": [i + 2 for i in range(len(rob))]}
write_json(
    snakemake.output.numbers,
    {"topic": "grade", "numbers": numbers, "provenance": job_provenance(snakemake, data_rows=rows)},
)
