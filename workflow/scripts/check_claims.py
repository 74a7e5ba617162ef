"""Snakemake script: check every claim of one manuscript against the registry before it renders."""

from dataclasses import asdict

from metabuild.claims import check_document
from metabuild.io import write_json
from metabuild.provenance import job_provenance
from metabuild.registry import read_registry

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

numbers = read_registry(snakemake.input.numbers)["numbers"]
claims = check_document(snakemake.input.qmd, numbers)
write_json(
    snakemake.output[0],
    {
        "document": snakemake.wildcards.document,
        "claims": [asdict(c) for c in claims],
        "provenance": job_provenance(snakemake),
    },
)
