"""Snakemake script: the provenance document's body, for the numbers the manuscripts print."""

from pathlib import Path

from metabuild.io import write_text
from metabuild.provenance_document import keys_used, provenance_markdown
from metabuild.registry import read_registry

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

numbers = read_registry(snakemake.input.numbers)["numbers"]
used = {Path(qmd).stem: keys_used(qmd, numbers) for qmd in snakemake.input.documents}
write_text(snakemake.output[0], provenance_markdown(numbers, used) + "\n")
