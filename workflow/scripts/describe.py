"""Snakemake script: the descriptive numbers of one topic (studies, flow, regimen, ...)."""

from metabuild import describe
from metabuild.data import load_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

topic = snakemake.wildcards.topic
dataset = load_dataset(snakemake.config["data_dir"]) if snakemake.input.data else None
numbers, data_rows = describe.TOPICS[topic](dataset, snakemake.params.settings)
write_json(
    snakemake.output[0],
    {"topic": topic, "numbers": numbers, "provenance": job_provenance(snakemake, data_rows=data_rows)},
)
