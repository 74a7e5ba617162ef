"""Build-performance benchmark (project issue 6). Prints figures; never asserts speed.

    /work/venv/bin/python benchmarks/run.py                 # everything (~10 min on 2 cores)
    /work/venv/bin/python benchmarks/run.py --skip-scale    # the project's own build only
    /work/venv/bin/python benchmarks/run.py --skip-real --scale 10x10,1000x100

Measures, each in a fresh temporary copy of the project (``git ls-files`` + data/):

(a) cold build ``snakemake --cores 2``; (b) no-op rerun; (c) rebuild after a one-cell edit
(one SD in pain_scores.csv) with the jobs rerun; (d) the floor: the same outputs in ONE Python
process (benchmarks/floor.py) and where the rest of the cold build goes (process start-up +
imports per job, DAG building, scheduling); (f) ``metabuild preview`` on the built copy: a
one-cell edit until the page being read has changed, and a save that changes nothing; (e)
synthetic reviews (benchmarks/synthetic.py) of N studies x M analyses built up to
results/numbers.json and the forest figures, with DAG time and per-job overhead, and a cProfile
of the DAG building of the largest one.

If data/ does not validate yet, (a)-(d) use a synthetic review with the project's own
analyses (stated in the output) and stop before the manuscript (whose numbers need real data).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402

CORES = 2
PY = sys.executable

LOGDIR: Path


# ------------------------------------------------------------------------------------- helpers
def env_for(copy: Path) -> dict[str, str]:
    """Jobs import the copy's library (the editable install would point at the original)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy / "workflow" / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("SOURCE_DATE_EPOCH", _epoch())
    return env


def _epoch() -> str:
    out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=synthetic.PROJECT, capture_output=True, text=True)
    return out.stdout.strip() or "1561939200"


def run(
    cmd: list[str], copy: Path, label: str, check: bool = False, timeout: float | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``cmd`` in ``copy``; on ``timeout`` kill its process group (returncode -9)."""
    start = time.perf_counter()
    with subprocess.Popen(
        cmd,
        cwd=copy,
        env=env_for(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as popen:
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            out, err = popen.communicate()
            err += f"\n[benchmark: killed after the {timeout:.0f} s time limit]"
        proc = subprocess.CompletedProcess(cmd, popen.returncode, out, err)
    elapsed = time.perf_counter() - start
    (LOGDIR / f"{label}.log").write_text(
        f"$ {' '.join(cmd)}\n# {elapsed:.2f} s, exit {proc.returncode}\n" + proc.stdout + proc.stderr
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"{label} failed (exit {proc.returncode}); log {LOGDIR / label}.log\n{tail}")
    return elapsed, proc


def smk(
    copy: Path, label: str, *args: str, check: bool = True, timeout: float | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    return run([synthetic.SNAKEMAKE, "--cores", str(CORES), *args], copy, label, check=check, timeout=timeout)


def job_stats(text: str) -> dict[str, int]:
    """Rule -> count from Snakemake's 'Job stats' table (dry run or real run)."""
    counts: dict[str, int] = {}
    block = text.split("Job stats:", 1)
    if len(block) < 2:
        return counts
    for line in block[1].splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def finished_jobs(text: str) -> int:
    return len(re.findall(r"^Finished jobid: \d+", text, flags=re.M))


def job_runtimes(copy: Path) -> dict[str, list[float]]:
    """Rule -> runtimes (s) of the jobs recorded in .snakemake/metadata (one entry per job)."""
    seen: dict[object, tuple[str, float]] = {}
    for path in (copy / ".snakemake" / "metadata").glob("*"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("starttime") and record.get("endtime"):
            key = (record["rule"], record.get("job_hash"))
            seen[key] = (record["rule"], record["endtime"] - record["starttime"])
    out: dict[str, list[float]] = {}
    for rule, seconds in seen.values():
        out.setdefault(rule, []).append(seconds)
    return out


def fmt(x: float) -> str:
    return f"{x:7.2f}"


def import_cost(copy: Path, modules: str, repeat: int = 3, plain: bool = False) -> float:
    """Median wall time of a new Python importing ``modules`` (with Snakemake's script preamble
    imports unless ``plain``)."""
    preamble = "" if plain else "import pickle; from snakemake.iocontainers import Snakemake; "
    code = f"{preamble}import {modules}"
    times = [run([PY, "-c", code], copy, "import_cost")[0] for _ in range(repeat)]
    return statistics.median(times)


def _preload_modules(copy: Path) -> list[str]:
    """The modules the workers' forkserver imports (metabuild.workers.PRELOAD of the copy)."""
    out = subprocess.run(
        [PY, "-c", "from metabuild.workers import PRELOAD; print(','.join(PRELOAD))"],
        cwd=copy,
        env=env_for(copy),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().split(",")


def noop_figures(root: Path, copy: Path, repeats: int = 3) -> dict | None:
    """Medians of ``repeats`` no-op rebuilds of the built ``copy`` beside Snakemake's floor (``--version``
    and an empty Snakefile), interleaved, wall and CPU of every process (benchmarks/noop.py: one wall
    time on a shared machine says little, and the job workers' CPU is not in it); None if that fails."""
    out = root / "noop.json"
    cmd = [PY, str(Path(__file__).parent / "noop.py"), "--copy", f"built={copy}", "--repeats", str(repeats)]
    _, proc = run([*cmd, "--no-dry", "--json", str(out)], copy, "b_noop_repeated")
    if proc.returncode != 0 or not out.exists():
        print(f"    (the repeated no-op measurement failed: see {LOGDIR / 'b_noop_repeated.log'})")
        return None
    return json.loads(out.read_text())


def make_copy(root: Path, name: str, data: str | None) -> Path:
    return synthetic.copy_project(root / name, data=data)


def edit_one_cell(
    copy: Path,
    data_dir: str = "data",
    file: str = "pain_scores.csv",
    column: str = "sd",
    where: dict[str, str] | None = None,
) -> str:
    """Change one cell of ``file`` in the copy: the first row matching ``where`` (all rows
    match when None); a number goes up by 0.1 (``sd``) or by 1 (a count)."""
    import csv
    import io

    path = copy / data_dir / file
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader(io.StringIO(lines[0])))
    col = header.index(column)
    rows = [next(csv.reader(io.StringIO(line))) for line in lines[1:]]
    matches = [
        i for i, row in enumerate(rows, start=1) if all(row[header.index(k)] == v for k, v in (where or {}).items())
    ]
    if not matches:
        raise ValueError(f"no row of {file} matches {where}")
    i = matches[0]
    row = rows[i - 1]
    old = row[col]
    row[col] = str(int(old) + 1) if old.isdigit() else f"{float(old) + 0.1:.2f}"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    lines[i] = buf.getvalue()
    path.write_text("".join(lines), encoding="utf-8")
    return f"{data_dir}/{file} row {i + 1} {column} {old} -> {row[col]}"


# ------------------------------------------------------------------------------------- (a)-(d)
def bench_project(root: Path, fallback_n: int) -> dict:
    valid, why = synthetic.real_data_valid()
    until: list[str] = []
    if valid:
        source = "real data/"
        data_arg: str | None = "real"
    else:
        source = (
            f"SYNTHETIC review ({fallback_n} studies, the project's own analyses) because data/ "
            f"does not validate yet: {why[:160]}"
        )
        data_arg = None
    print(f"\n== (a)-(d) the project's build, data: {source}")
    copies = {name: make_copy(root, name, data_arg) for name in ("cold", "floor")}
    if not valid:
        for copy in copies.values():
            synthetic.make_review(copy, fallback_n, None, seed=7)
        # the manuscript cites numbers only real data produce: stop before rendering
        until = [
            "--until",
            "number_registry",
            "reproduction_report",
            "forest_plot",
            "leave_one_out_plot",
            "risk_of_bias_plot",
            "flow_diagram",
            "table1",
            "table2_grade",
            "table_s2_adverse_proportions",
            "validate_data",
            "run_analysis",
            "describe",
        ]
    cold = copies["cold"]
    n_dry = job_stats(smk(cold, "a_dry_before", "-n", *until)[1].stdout)
    # the dry run validated data/ and cached the verdict: drop the cache so (a) is really cold
    for stamp in (cold / ".snakemake" / "metabuild").glob("*"):
        stamp.unlink()
    t_cold, proc = smk(cold, "a_cold", *until, check=False)
    cold_ok = proc.returncode == 0
    n_cold = finished_jobs(proc.stdout + proc.stderr)
    registry_size(cold, "of the cold build")
    runtimes = job_runtimes(cold)
    sum_jobs = sum(sum(v) for v in runtimes.values())
    t_noop, proc = smk(cold, "b_noop", *until, check=False)
    noop_jobs = finished_jobs(proc.stdout + proc.stderr)
    noop = noop_figures(root, cold) if not until else None
    if noop:
        t_noop = noop["noop-built"]["wall_median"]
    t_dry_built, _ = smk(cold, "b_dry_uptodate", "-n", *until, check=False)
    edit = edit_one_cell(cold)
    _, dry = smk(cold, "c_dry_after_edit", "-n", *until, check=False)
    planned = job_stats(dry.stdout)
    t_edit, proc = smk(cold, "c_edit", *until, check=False)
    n_edit = finished_jobs(proc.stdout + proc.stderr)
    # a narrower edit: one adverse-event count (one analysis, its figure, the documents)
    narrow = None
    if valid:
        narrow_edit = edit_one_cell(
            cold, file="binary_outcomes.csv", column="events", where={"outcome": "nausea", "arm": "control"}
        )
        _, narrow_dry = smk(cold, "c2_dry_after_edit", "-n", check=False)
        t_narrow, proc = smk(cold, "c2_edit", check=False)
        narrow = (t_narrow, finished_jobs(proc.stdout + proc.stderr), job_stats(narrow_dry.stdout), narrow_edit)

    t_dry_clean, _ = smk(copies["floor"], "d_dry_clean", "-n", *until, check=False)
    floor_json = root / "floor.json"
    floor_args = [PY, "benchmarks/floor.py", "--json", str(floor_json)] + (["--no-render"] if not valid else [])
    (copies["floor"] / "benchmarks").mkdir(exist_ok=True)
    for f in ("floor.py", "synthetic.py"):
        (copies["floor"] / "benchmarks" / f).write_text((Path(__file__).parent / f).read_text())
    t_floor, fproc = run(floor_args, copies["floor"], "d_floor")
    floor = (
        json.loads(floor_json.read_text())
        if floor_json.exists()
        else {"seconds": {}, "errors": {"floor": fproc.stderr[-300:]}}
    )

    # Jobs run in warm workers (workflow/lib/metabuild/workers.py): the interpreter start-up and
    # imports are paid once per build by the forkserver, not once per job. For comparison, what
    # each job would pay as a `script:` job (new Python + Snakemake's preamble + the imports).
    preload = import_cost(cold, ", ".join(_preload_modules(cold)), plain=True)
    imp_analysis = import_cost(cold, "metabuild.analysis, metabuild.data, metabuild.io, metabuild.provenance")
    imp_figure = import_cost(cold, "metabuild.figures.forest, metabuild.io")
    n_jobs = sum(len(v) for v in runtimes.values())
    figure_rules = {"forest_plot", "leave_one_out_plot", "risk_of_bias_plot", "flow_diagram"}
    n_fig = sum(len(v) for r, v in runtimes.items() if r in figure_rules)
    avoided = (n_jobs - n_fig) * imp_analysis + n_fig * imp_figure

    print(
        f"(a) cold build:         {fmt(t_cold)} s  ({n_cold} jobs finished, {sum(n_dry.values())} planned; "
        f"{'ok' if cold_ok else 'FAILED: see ' + str(LOGDIR / 'a_cold.log')})"
    )
    print(f"(b) no-op rerun:        {fmt(t_noop)} s  ({noop_jobs} jobs run)   [target < 2 s]")
    if noop:
        floor_cpu, floor_wall = noop["empty"]["cpu_median"], noop["empty"]["wall_median"]
        version_cpu = noop["version"]["cpu_median"]
        print(
            f"    medians of {noop['repeats']} (benchmarks/noop.py, load {noop['load'][0]:.1f}-{noop['load'][1]:.1f}): "
            f"wall {noop['noop-built']['wall_median']:.2f} s, CPU (user+sys, every process) "
            f"{noop['noop-built']['cpu_median']:.2f} s; Snakemake's own floor, an empty Snakefile: wall "
            f"{floor_wall:.2f} s, CPU {floor_cpu:.2f} s (`snakemake --version`: CPU {version_cpu:.2f} s)"
        )
    print(f"    snakemake -n (built): {t_dry_built:6.2f} s;  snakemake -n (clean copy): {t_dry_clean:.2f} s")
    print(
        f"(c) one-cell edit:      {fmt(t_edit)} s  ({n_edit} jobs finished; -n planned "
        f"{sum(planned.values())}: {dict(sorted(planned.items()))})  [{edit}]"
    )
    print(f"    edit/cold = {t_edit / t_cold:.2f}   [target < 0.25]")
    if narrow:
        t_narrow, n_narrow, narrow_planned, narrow_edit = narrow
        print(
            f"    narrower edit:      {fmt(t_narrow)} s  ({n_narrow} jobs finished; -n planned "
            f"{sum(narrow_planned.values())}: {dict(sorted(narrow_planned.items()))})  [{narrow_edit}]"
        )
        print(f"    narrower edit/cold = {t_narrow / t_cold:.2f}")
    print(
        "    an edit's own floor: Snakemake's start and DAG (the no-op above) + re-rendering the "
        "documents that print a changed number (render stages of (d), two documents side by side)"
    )
    print(f"(d) floor (one process): {fmt(t_floor)} s wall; in-process stages (s):")
    for key, value in floor["seconds"].items():
        print(f"        {key:28s} {value:8.3f}")
    if floor["errors"]:
        print(f"    floor stages that failed: {floor['errors']}")
    print(f"    cold/floor = {t_cold / t_floor:.2f}   [target <= 1.5]")
    print("    where the cold build goes:")
    print(
        f"      jobs: {n_jobs} recorded; sum of job runtimes {sum_jobs:.1f} s (/{CORES} cores = "
        f"{sum_jobs / CORES:.1f} s)"
    )
    for rule, values in sorted(runtimes.items(), key=lambda kv: -sum(kv[1])):
        print(f"        {rule:30s} n={len(values):3d}  sum {sum(values):7.2f}  mean {statistics.mean(values):5.2f} s")
    print(
        f"      worker start-up, once per build (a forkserver importing {len(_preload_modules(cold))} modules): "
        f"{preload:.2f} s"
    )
    print(
        f"      not paid: as `script:` jobs each would start Python + Snakemake's preamble + imports "
        f"(analysis-type {imp_analysis:.2f} s, figure-type {imp_figure:.2f} s) -> ~{avoided:.1f} s CPU "
        f"over {n_jobs} jobs"
    )
    print(f"      Snakemake DAG building (snakemake -n on a clean copy): {t_dry_clean:.2f} s")
    rest = t_cold - t_dry_clean - sum_jobs / CORES
    print(
        f"      scheduling/bookkeeping/idle cores = cold - DAG - sum(jobs)/{CORES} = {rest:.2f} s "
        f"({rest / max(n_jobs, 1):.2f} s per job)"
    )
    return {
        "cold": t_cold,
        "noop": t_noop,
        "edit": t_edit,
        "floor": t_floor,
        "dry_clean": t_dry_clean,
        "copy": cold,
        "valid": valid,
    }


# ------------------------------------------------------------------------------------- (f)
def bench_preview(copy: Path, cold: float, repeats: int) -> None:
    """``metabuild preview`` on a built copy: ``repeats`` one-cell edits (an SD of
    pain_scores.csv, as in (c)), each timed from the write until the preview's state endpoint
    (``/__preview__/state``, which the open page polls every ``POLL_MS``) reports a new digest
    of results/manuscript/paper.html, and until both passes are done; then saves that change
    nothing (the same bytes written again), timed until the rebuild is done."""
    import urllib.request

    print(f"\n== (f) metabuild preview (warm workers, HTML of the page first), {repeats} edits")
    log = LOGDIR / "f_preview.log"
    with log.open("w") as out:
        popen = subprocess.Popen(
            [PY, "-m", "metabuild", "preview", "--cores", str(CORES), "--port", "0", "--quiet"],
            cwd=copy,
            env=env_for(copy),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not (m := re.search(r"http://127\.0\.0\.1:\d+/", log.read_text())):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the preview did not start; see {log}")
            time.sleep(0.1)
        url = m.group(0) + "__preview__/state?page=/manuscript/paper.html"

        def state() -> dict:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)

        def wait(condition, timeout: float = 900) -> dict:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                current = state()
                if condition(current):
                    return current
                time.sleep(0.05)
            raise RuntimeError(f"the preview did not finish in {timeout:.0f} s; see {log}")

        wait(lambda s: s["rebuilds"] >= 1 and not s["building"])  # the start-up build (up to date)
        visible, complete = [], []
        for _ in range(repeats):
            before = state()
            start = time.perf_counter()
            edit = edit_one_cell(copy)
            wait(lambda s, d=before["digest"]: s["digest"] != d)
            visible.append(time.perf_counter() - start)
            after = wait(lambda s, n=before["rebuilds"]: s["rebuilds"] > n and not s["building"])
            complete.append(time.perf_counter() - start)
            if after["error"]:
                print(f"    the rebuild failed: {after['error'][:300]}")
        noops = []
        for _ in range(repeats):
            before = state()
            path = copy / "data" / "pain_scores.csv"
            start = time.perf_counter()
            path.write_bytes(path.read_bytes())
            wait(lambda s, n=before["rebuilds"]: s["rebuilds"] > n and not s["building"])
            noops.append(time.perf_counter() - start)
    finally:
        if popen.poll() is None:
            os.kill(popen.pid, signal.SIGTERM)
        popen.wait(timeout=120)
    median = statistics.median(visible)
    print(
        f"    edit seen in the page:  median {fmt(median)} s  (each: {', '.join(f'{t:.2f}' for t in visible)}; "
        f"the page polls every 0.25 s on top)  [{edit}, repeated]"
    )
    print(f"    visible/cold = {median / cold:.2f}   [target < 0.25 of a cold build]")
    print(f"    both passes done:       median {fmt(statistics.median(complete))} s  (the other document and formats)")
    print(f"    a save that changes nothing: median {fmt(statistics.median(noops))} s until the rebuild is done")


def registry_size(copy: Path, label: str, *extra: str) -> None:
    """Print the registry's size, numbers, activities and read time (benchmarks/registry_scale.py,
    run with the copy's library); ``extra``: its ``--render`` / ``--paper`` options."""
    results = copy / "results"
    if not (results / "numbers.json").is_file():
        print(f"    registry {label}: no results/numbers.json")
        return
    script = str(Path(__file__).resolve().parent / "registry_scale.py")
    _, proc = run([PY, script, str(results), *extra], copy, f"registry_{label}")
    text = (proc.stdout + proc.stderr).strip()
    print("\n".join(line for line in text.splitlines() if line.startswith("    ")) or text[-2000:], flush=True)


# ------------------------------------------------------------------------------------- (e)
def bench_scale(
    root: Path, grid: list[tuple[int, int]], profile: bool, build_timeout: float, paper: Path | None = None
) -> None:
    print("\n== (e) scale: synthetic reviews, targets results/numbers.json + forest figures, --cores 2")
    print(
        f"{'N':>5} {'M':>4} {'jobs':>5} {'-n clean':>9} {'build':>8} {'-n built':>9} {'sum jobs':>9} "
        f"{'job mean':>9} {'overhead/job':>12} {'ok':>3}"
    )
    rows = []
    for n, m in grid:
        copy = synthetic.copy_project(root / f"scale_{n}x{m}", data=None)
        synthetic.make_review(copy, n, m, seed=n * 1000 + m)
        config = json.loads(json.dumps(__import__("yaml").safe_load((copy / "config" / "config.yaml").read_text())))
        targets = ["results/numbers.json"] + [
            f"results/figures/{s['figure']}.svg" for s in config["analyses"].values() if s.get("figure")
        ]
        t_dry, dry = smk(copy, f"e_{n}x{m}_dry", "-n", *targets, check=False)
        planned = sum(job_stats(dry.stdout).values())
        for stamp in (copy / ".snakemake" / "metabuild").glob("*"):
            stamp.unlink()
        t_build, proc = smk(copy, f"e_{n}x{m}_build", *targets, check=False, timeout=build_timeout)
        timed_out = proc.returncode == -signal.SIGKILL
        if timed_out:
            run([synthetic.SNAKEMAKE, "--unlock", *targets], copy, f"e_{n}x{m}_unlock")
        t_dry2, _ = smk(copy, f"e_{n}x{m}_dry_built", "-n", *targets, check=False)
        runtimes = job_runtimes(copy)
        sum_jobs = sum(sum(v) for v in runtimes.values())
        jobs = sum(len(v) for v in runtimes.values())
        overhead = (t_build - t_dry - sum_jobs / CORES) / max(jobs, 1)
        ok = proc.returncode == 0
        rows.append((n, m, jobs, t_dry, t_build, t_dry2, sum_jobs, overhead, ok, copy, targets))
        status = "yes" if ok else ("TIMEOUT" if timed_out else "NO")
        print(
            f"{n:5d} {m:4d} {jobs:5d} {t_dry:9.2f} {t_build:8.2f} {t_dry2:9.2f} {sum_jobs:9.1f} "
            f"{sum_jobs / max(jobs, 1):9.2f} {overhead:12.2f} {status}  (planned {planned})",
            flush=True,
        )
        if timed_out and jobs:
            # jobs finish in no particular order: project from the mean job time per rule
            per_rule = {r: statistics.mean(v) for r, v in runtimes.items()}
            counts = job_stats(dry.stdout)
            fallback = statistics.mean(per_rule.values())
            projected = t_dry + sum(c * per_rule.get(r, fallback) for r, c in counts.items()) / CORES
            print(
                f"      killed after {build_timeout:.0f} s with {jobs}/{planned} jobs done; projected build "
                f"~{projected:.0f} s from the mean job time of each rule"
            )
        if n == 1000 and m == 100:
            print(f"    target 1000 x 100 under 300 s: {t_build:.0f} s")
        # the registry (target at 1,000 x 100: under 10 MB); the largest review's documents are
        # rendered from it, beside today's paper when its build is at hand
        render = ["--render"] if ok and (n, m) == max(grid, key=lambda c: c[0] * c[1]) and m >= 100 else []
        if render and paper is not None:
            render += ["--paper", str(paper)]
        registry_size(copy, f"{n}x{m}", *render)
    for m in sorted({r[1] for r in rows}):
        sub = [r for r in rows if r[1] == m]
        if len(sub) > 1:
            a, b = sub[0], sub[-1]
            print(
                f"    M={m}: N x{b[0] / a[0]:.0f} -> build x{b[4] / a[4]:.1f}, DAG x{b[3] / a[3]:.1f}, "
                f"mean job x{(b[6] / max(b[2], 1)) / (a[6] / max(a[2], 1)):.1f}"
            )
    for n in sorted({r[0] for r in rows}):
        sub = [r for r in rows if r[0] == n]
        if len(sub) > 1:
            a, b = sub[0], sub[-1]
            print(
                f"    N={n}: M x{b[1] / a[1]:.0f} -> build x{b[4] / a[4]:.1f}, DAG x{b[3] / a[3]:.1f}, "
                f"jobs x{b[2] / max(a[2], 1):.1f}"
            )
    if profile and rows:
        biggest = max(rows, key=lambda r: r[0] * r[1])
        profile_dag(biggest[9], biggest[10], f"{biggest[0]}x{biggest[1]}")
        per_rule = job_runtimes(biggest[9])
        print(f"    job runtimes by rule at {biggest[0]} x {biggest[1]}:")
        for rule, values in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
            print(
                f"        {rule:30s} n={len(values):3d}  sum {sum(values):7.1f}  mean {statistics.mean(values):5.2f}"
                f"  max {max(values):5.2f} s"
            )


def profile_dag(copy: Path, targets: list[str], label: str) -> None:
    """cProfile of `snakemake -n` (DAG building incl. the Snakefile's parse-time work)."""
    for state, clear in (("validation cache cleared", True), ("up to date, cache warm", False)):
        if clear:
            for stamp in (copy / ".snakemake" / "metabuild").glob("*"):
                stamp.unlink()
        out = LOGDIR / f"profile_{label}_{'cold' if clear else 'warm'}.prof"
        t, _ = run(
            [PY, "-m", "cProfile", "-o", str(out), synthetic.SNAKEMAKE, "--cores", str(CORES), "-n", *targets],
            copy,
            f"profile_{label}",
        )
        print(f"\n    cProfile of snakemake -n at {label} ({state}; {t:.1f} s under the profiler): {out}")
        stats = pstats.Stats(str(out))
        entries = []
        for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
            short = re.sub(r".*/(site-packages|lib)/", "", file)
            entries.append((ct, tt, nc, f"{short}:{line}({func})"))
        interesting = [
            e
            for e in entries
            if "metabuild" in e[3]
            or "Snakefile" in e[3]
            or ".smk" in e[3]
            or "snakemake/dag.py" in e[3]
            or "snakemake/rules.py" in e[3]
            or "snakemake/jobs.py" in e[3]
            or "snakemake/persistence.py" in e[3]
            or "frictionless" in e[3]
            or "snakemake/io.py" in e[3]
        ]
        print("      top cumulative (metabuild / Snakefile / Snakemake DAG / frictionless):")
        for ct, tt, nc, name in sorted(interesting, reverse=True)[:22]:
            print(f"        cum {ct:7.2f}  self {tt:6.2f}  calls {nc:8d}  {name}")
        print("      top self time (all):")
        for ct, tt, nc, name in sorted(entries, key=lambda e: -e[1])[:10]:
            print(f"        self {tt:6.2f}  cum {ct:7.2f}  calls {nc:8d}  {name}")


# ------------------------------------------------------------------------------------- main
def main() -> None:
    global LOGDIR
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-real", action="store_true", help="skip (a)-(d)")
    parser.add_argument("--skip-scale", action="store_true", help="skip (e)")
    parser.add_argument(
        "--scale", default="10x10,100x10,1000x10,10x100,100x100,1000x100", help="comma-separated NxM grid for (e)"
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--skip-preview", action="store_true", help="skip (f)")
    parser.add_argument("--preview-edits", type=int, default=3, help="edits timed in (f) (default: 3)")
    parser.add_argument(
        "--build-timeout",
        type=float,
        default=900,
        help="seconds after which a scale build is killed and its total projected",
    )
    parser.add_argument("--fallback-n", type=int, default=20, help="studies of the synthetic stand-in for data/")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument("--workdir", help="where to put the copies (default: a new temporary directory)")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="metabuild-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    LOGDIR = root / "logs"
    LOGDIR.mkdir(exist_ok=True)
    load = os.getloadavg()
    print(
        f"metabuild build benchmark: {os.cpu_count()} CPUs, load {load[0]:.1f}/{load[1]:.1f}, --cores {CORES}; "
        f"copies and logs in {root}"
    )
    if not args.skip_real:
        project = bench_project(root, args.fallback_n)
        if project["valid"] and not args.skip_preview:
            bench_preview(project["copy"], project["cold"], args.preview_edits)
    # today's paper, rendered beside the largest review: the cold copy's build, else the project's own
    candidates = (root / "cold" / "results", synthetic.PROJECT / "results")
    paper = next((r for r in candidates if (r / "manuscript" / "paper.html").is_file()), None)
    if not args.skip_scale:
        grid = [tuple(int(x) for x in cell.split("x")) for cell in args.scale.split(",") if cell]
        bench_scale(root, grid, profile=not args.no_profile, build_timeout=args.build_timeout, paper=paper)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (other processes on the machine inflate timings)")
    if not args.keep:
        print(f"(copies left in {root}; delete with rm -rf)")


if __name__ == "__main__":
    main()
