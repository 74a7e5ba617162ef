# Rebuilds the ketamine meta-analysis paper from data/: `snakemake --cores 4`.
# Rules live in workflow/rules/ by topic; configuration in config/config.yaml.

from snakemake.utils import min_version

min_version("9.0")


# common.smk checks config/config.yaml as raw YAML, then loads it (configfile:)
include: "workflow/rules/common.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/registry.smk"
include: "workflow/rules/manuscript.smk"


rule all:
    input:
        rules.validate_data.output,
        expand(f"{RESULTS}/analyses/{{analysis}}.json", analysis=ANALYSES),
        FIGURES,
        TABLES,
        f"{RESULTS}/numbers.json",
        MANUSCRIPT_OUTPUTS,
    default_target: True


# What Snakemake records as each rule's code includes the SHA-256 of its job script and library
# modules, so --list-changes code, --summary and --rerun-triggers code see an edited script
# (workflow_support.record_job_code_in_rules; README, "Snakemake's own tools").
ws.record_job_code_in_rules(workflow.rules)


onstart:
    # Snakemake found jobs to run: start the job workers now if the Snakefile did not (common.smk)
    workers.start_early(workflow)
