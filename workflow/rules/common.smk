# Shared set-up: configuration schema, data validation (before any job runs, so bad input
# leaves no output behind), and the per-job data digests that make a one-cell edit rerun
# only the jobs that read that cell.

import os
import sys
from pathlib import Path

from snakemake.utils import validate

LIBRARY_PATH = str(Path(workflow.basedir) / "workflow" / "lib")
sys.path.insert(0, LIBRARY_PATH)
# Jobs import the library of this checkout, not whichever copy happens to be pip-installed.
# The workflow sets this variable for its jobs; it does not require it from the user (so no
# `envvars:` directive).
PYTHON_PATH_VARIABLE = "PYTHONPATH"
os.environ[PYTHON_PATH_VARIABLE] = os.pathsep.join(
    filter(None, [LIBRARY_PATH, os.environ.get(PYTHON_PATH_VARIABLE)])
)

from metabuild import workflow_support as ws  # noqa: E402

validate(config, "../../config/schemas/config.schema.yaml")
ws.check_config(config)

DATA_DIR = config["data_dir"]
RESULTS = config["results_dir"]
ANALYSES = config["analyses"]
DATA = ws.load_valid_dataset(DATA_DIR)
DIGESTS = ws.analysis_digests(ANALYSES, DATA, config)
LIB = "workflow/lib/metabuild"
# Software of every job (used with --sdm conda): the same file conda users install.
CONDA_ENV = "../../environment.yml"


wildcard_constraints:
    analysis=r"[a-z][a-z0-9_]*",
    stem=r"[a-z][a-z0-9_]*",
    document=r"paper|supplement",


def data_file(name):
    return f"{DATA_DIR}/{name}"


def library(*modules):
    """Library modules a job imports: editing one reruns the jobs that use it."""
    return [f"{LIB}/{m}.py" for m in modules]
