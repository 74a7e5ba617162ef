"""Snakemake script: Table 1, characteristics of the included trials."""

from metabuild.data import load_dataset
from metabuild.io import write_text
from metabuild.tables import markdown_table, table1

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

protocol = snakemake.params.protocol
data = load_dataset(snakemake.config["data_dir"])
frame = table1(
    data.studies,
    data.pain_scores,
    protocol["reference_weight_kg"]["value"],
    protocol["high_dose_threshold_mg"]["value"],
)
note = (
    "Cumulative dose for a reference patient of the stated weight, computed from each regimen; "
    "high dose when at or above the protocol threshold."
)
write_text(snakemake.output.md, markdown_table(frame, [note]))
write_text(snakemake.output.csv, frame.to_csv(index=False, lineterminator="\n"))
