"""Snakemake script: the reproduction report (published beside reproduced values)."""

import pandas as pd

from metabuild.io import read_json, write_json, write_text
from metabuild.report import reproduction_report

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

published = pd.read_csv(snakemake.input.published, dtype=str, keep_default_na=False)
report = reproduction_report(
    read_json(snakemake.input.numbers),
    published,
    snakemake.config["data_dir"],
    sensitivity=read_json(snakemake.input.sensitivity[0]) if snakemake.input.sensitivity else None,
)
write_json(snakemake.output.json, report.data)
write_text(snakemake.output.md, report.markdown)
write_text(snakemake.output.html, report.html)
write_text(snakemake.output.appendix, report.appendix)
if snakemake.params.gate == "fail" and report.data["summary"]["gate_failures"]:
    raise SystemExit(
        f"consistency gate failed: {report.data['summary']['gate_failures']} problem(s); see {snakemake.output.md}"
    )
