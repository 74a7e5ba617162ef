"""Snakemake script: the reproduction report (published beside reproduced values)."""

import pandas as pd

from metabuild.io import read_json, write_json, write_text
from metabuild.registry import read_registry
from metabuild.report import reproduction_report

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

published = pd.read_csv(snakemake.input.published, dtype=str, keep_default_na=False)
report = reproduction_report(
    read_registry(snakemake.input.numbers),
    published,
    snakemake.config["data_dir"],
    sensitivity=read_json(snakemake.input.sensitivity[0]) if snakemake.input.sensitivity else None,
    waivers=snakemake.params.waivers,
)
write_json(snakemake.output.json, report.data)
write_text(snakemake.output.md, report.markdown)
write_text(snakemake.output.html, report.html)
write_text(snakemake.output.appendix, report.appendix)
write_text(snakemake.output.differences, report.differences)
failures = [g for g in report.data["gate"] if "waived" not in g]
for g in failures:
    print(f"consistency gate: {g['key']} ({g['check']}): {g['message']}")
if snakemake.params.gate == "fail" and failures:
    listed = "\n  ".join(f"{g['key']} ({g['check']}): {g['message']}" for g in failures)
    raise SystemExit(
        f"consistency gate failed with {len(failures)} problem(s) in this build's own numbers:\n  {listed}\n"
        "Fix the data, or accept a failure under consistency_waivers in config/config.yaml with the reason."
    )
