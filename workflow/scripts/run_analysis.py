"""Snakemake script: run one configured analysis and write its result JSON."""

from metabuild.analysis import run_analysis
from metabuild.data import load_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

config = snakemake.config
dataset = load_dataset(config["data_dir"])
result = run_analysis(snakemake.wildcards.analysis, snakemake.params.spec, dataset, config)
result["provenance"] = job_provenance(snakemake, data_rows=result["data_rows"], study_ids=result["study_ids"])
write_json(snakemake.output[0], result)
