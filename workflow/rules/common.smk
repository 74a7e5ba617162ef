# Shared set-up: configuration schema, data validation (before any job runs, so bad input
# leaves no output behind), and the per-job data digests that make a one-cell edit rerun
# only the jobs that read that cell.

import os
import sys
from pathlib import Path

LIBRARY_PATH = str(Path(workflow.basedir) / "workflow" / "lib")
sys.path.insert(0, LIBRARY_PATH)
# Jobs import the library of this checkout, not whichever copy happens to be pip-installed.
# The workflow sets this variable for its jobs; it does not require it from the user (so no
# `envvars:` directive).
PYTHON_PATH_VARIABLE = "PYTHONPATH"
os.environ[PYTHON_PATH_VARIABLE] = os.pathsep.join(
    filter(None, [LIBRARY_PATH, os.environ.get(PYTHON_PATH_VARIABLE)])
)

from metabuild import workers  # noqa: E402
from metabuild import workflow_support as ws  # noqa: E402

# Checked as raw YAML before Snakemake's loader reads it: that loader would run a YTE template
# (Python code) or expand an alias bomb. (A file given with --configfile is loaded by
# Snakemake before the workflow starts, so only its loaded values are checked.)
ws.check_config_file(ws.CONFIG_FILE)


configfile: ws.CONFIG_FILE


# the description at the top of `snakemake --report`
report: "../report/workflow.rst"


# Snakemake's validate (it fills in the schema's defaults), skipped when this configuration passed before
ws.validate_config(config, Path(workflow.basedir) / "config" / "schemas" / "config.schema.yaml")
ws.check_config(config)

DATA_DIR = config["data_dir"]
RESULTS = config["results_dir"]
ANALYSES = config["analyses"]
# hashed before loading: jobs run only on these bytes (run_job), never on a later edit
PLANNED = ws.planned_data_hashes(DATA_DIR, workflow.is_main_process)
# The data validated and checked against the configuration, and the digests of the cells and
# configuration each job reads (its params): cached while config, data and library are unchanged.
PLAN = ws.cached_plan(config, DATA_DIR)
# The job workers' imports (about 1.3 s of CPU) run in the background while Snakemake builds the
# DAG, when this process runs jobs (not for -n, --report, --lint, --unlock, ..., nor on the host
# that submits jobs to a cluster: a cluster job runs its script in its own Snakemake process) and
# jobs are likely: config, data or library changed. Otherwise they start only once Snakemake has
# found jobs to run (onstart, in the Snakefile), so that a no-op rebuild does not pay for them.
workers.start_early(workflow, likely_jobs=PLAN is None)
PLAN = PLAN or ws.plan_build(config, DATA_DIR)
DIGESTS = PLAN.analyses
# The workflow's own files, relative to the working directory: "." for the flagship review at the
# top level, "../.." for a review built in its own folder (snakemake --directory reviews/<name>).
ROOT = os.path.relpath(workflow.basedir)
LIB = os.path.normpath(f"{ROOT}/workflow/lib/metabuild")
# the review's own module (config review_module), an input of the jobs that use it
REVIEW_CODE = [config["review_module"]] if config.get("review_module") else []
# descriptive topics (the library's and the review module's) -> data cells read
DESCRIPTIVE = ws.descriptive_inputs(config)
PRESENT_DATA = ws.present_data_files(DATA_DIR)


wildcard_constraints:
    analysis=r"[a-z][a-z0-9_]*",
    stem=r"[a-z][a-z0-9_]*",
    # the manuscripts (config manuscript.documents) and the provenance document
    document="|".join(
        [*config["manuscript"]["documents"], *filter(None, [config["manuscript"].get("provenance_document", "provenance")])]
    ),


def data_file(name):
    return f"{DATA_DIR}/{name}"


def library(*modules):
    """Library modules a job imports: editing one reruns the jobs that use it."""
    return [f"{LIB}/{m}.py" for m in modules]


def job_script(rule_name):
    """The script of a rule, declared as an input so that editing it reruns the rule's jobs."""
    return os.path.normpath(f"{ROOT}/workflow/scripts/{rule_name}.py")


def run_job(rule_name, input, output, params, wildcards, log):
    """Run the job's script (input.script) in a warm worker process.

    Rules use this one-line `run:` instead of `script:` because a `script:` job spends about
    1.5 s starting Python and importing for 0.1 to 0.5 s of work; the script files and what
    they see as `snakemake` are the same (see workflow/lib/metabuild/workers.py).
    """
    with ws.data_as_planned(PLANNED, input):
        workers.run_script(
            input.script,
            rule_name=rule_name,
            input=input,
            output=output,
            params=params,
            wildcards=wildcards,
            log=log,
            config=config,
            workers=workflow.cores,
        )


def document_output(fmt):
    """One format of a rendered document (rule render_document); its PDF and HTML go into
    `snakemake --report`."""
    path = f"{RESULTS}/{{folder}}/{{document}}.{fmt}"
    if fmt not in ("pdf", "html"):
        return path
    return report(
        path,
        caption="../report/document.rst",
        category="Documents",
        subcategory=lambda w: {"manuscript": "Audit rendering", "submission": "Submission"}[w.folder],
        labels=lambda w: {"document": w.document, "format": fmt.upper()},
    )
