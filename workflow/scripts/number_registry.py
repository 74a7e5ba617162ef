"""Snakemake script: gather every reported number into results/numbers.json."""

from metabuild.io import write_json
from metabuild.prov import registry_to_prov
from metabuild.registry import build_registry, resolve

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

registry = build_registry(snakemake.input.sources, snakemake.input.published)
write_json(snakemake.output.numbers, registry)
write_json(snakemake.output.prov, registry_to_prov(resolve(registry, snakemake.output.numbers)))
