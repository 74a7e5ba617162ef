"""Snakemake script: record the validation of data/ (files, hashes, row counts)."""

from pathlib import Path

from metabuild.data import load_dataset, validate_dataset
from metabuild.io import write_json
from metabuild.provenance import job_provenance

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

data_dir = Path(snakemake.config["data_dir"])
validate_dataset(data_dir)  # raises with file, row and column on any problem
dataset = load_dataset(data_dir)
files = {}
for path in sorted(data_dir.glob("*.csv")):
    frame = getattr(dataset, path.stem, None)
    files[path.name] = {"rows": None if frame is None else int(len(frame))}
write_json(snakemake.output[0], {"valid": True, "files": files, "provenance": job_provenance(snakemake)})
