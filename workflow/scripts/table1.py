"""Snakemake script: a table of study characteristics (the review module's, or config ``table1``)."""

from metabuild import review
from metabuild.data import load_dataset
from metabuild.io import write_text
from metabuild.tables import characteristics_table, markdown_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

config = snakemake.config
data = load_dataset(config["data_dir"])
name = snakemake.wildcards.table
own = review.tables(config)
if name in own:
    frame, notes = own[name][0](data, snakemake.params.settings)
else:
    settings = snakemake.params.settings
    frame, notes = characteristics_table(data.studies, settings["columns"]), settings.get("notes", [])
write_text(snakemake.output.md, markdown_table(frame, notes))
write_text(snakemake.output.csv, frame.to_csv(index=False, lineterminator="\n"))
