"""Snakemake script: the descriptive numbers of one topic (studies, flow, the review module's topics, ...)."""

from metabuild import describe, review
from metabuild.data import load_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

topic = snakemake.wildcards.topic
dataset = load_dataset(snakemake.config["data_dir"]) if snakemake.input.data else None
# the library's topics, then the review module's own (config review_module)
topics = {**describe.TOPICS, **{name: entry[0] for name, entry in review.topics(snakemake.config).items()}}
numbers, data_rows = topics[topic](dataset, snakemake.params.settings)
write_json(
    snakemake.output[0],
    {"topic": topic, "numbers": numbers, "provenance": job_provenance(snakemake, data_rows=data_rows)},
)
