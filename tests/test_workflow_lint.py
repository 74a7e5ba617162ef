"""The workflow passes Snakemake's own linter and its configuration validates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output


def test_every_analysis_job_is_planned():
    """A dry run plans one job per configured analysis (the DAG is built from configuration)."""
    import yaml

    analyses = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["analyses"]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--quiet", "rules", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in (proc.stdout + proc.stderr).splitlines() if x.strip().startswith("run_analysis"))
    assert int(line.split()[1]) == len(analyses)
