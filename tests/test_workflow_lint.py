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


def test_every_run_rule_names_its_script_as_an_input():
    """A rule's `run:` block only hands its script to the worker pool; the script is named as
    the input `script` so that Snakemake sees it (an edit reruns the jobs, and its hash is in
    the rule's recorded code: workflow_support.record_job_code_in_rules)."""
    import re

    rules = {}
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", path.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            rules[name] = block
    with_run = {name: block for name, block in rules.items() if re.search(r"^    run:", block, re.M)}
    assert len(with_run) >= 15
    for name, block in with_run.items():
        # its own script, or (render_provenance_document) the script of the rule it repeats
        script = re.search(r'script=job_script\("(\w+)"\)', block)
        assert script, f"rule {name} does not name its script (workflow/scripts/{name}.py)"
        assert script.group(1) == name or script.group(1) in rules, name
        assert (ROOT / "workflow" / "scripts" / f"{script.group(1)}.py").is_file()


def test_recorded_rule_code_holds_the_hash_of_its_script_and_modules(tmp_path):
    from types import SimpleNamespace

    from snakemake.iocontainers import InputFiles

    from metabuild.workflow_support import record_job_code_in_rules

    script, module = tmp_path / "job.py", tmp_path / "lib.py"
    script.write_text("print(1)\n")
    module.write_text("X = 1\n")

    def rule(name, run_src, **named):
        files = InputFiles()
        for key, value in named.items():
            start = len(files)
            files.extend(value if isinstance(value, list) else [value])
            files._set_name(key, start, end=len(files) if isinstance(value, list) else None)
        return SimpleNamespace(name=name, run_func_src=run_src, input=files)

    job = rule("job", "run_job(...)\n", data="data.csv", code=[str(module)], script=str(script))
    other = rule("all", None, data="data.csv")
    assert record_job_code_in_rules([job, other]) == ["job"]
    before = job.run_func_src
    assert before.startswith("run_job(...)\n") and before.count("sha256:") == 2
    assert str(script) in before and str(module) in before and "data.csv" not in before
    # the recorded code changes with the script's content, not with its modification time
    script.write_text("print(2)\n")
    edited = rule("job", "run_job(...)\n", code=[str(module)], script=str(script))
    record_job_code_in_rules([edited])
    assert edited.run_func_src != before
