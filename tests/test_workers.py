"""The warm-worker job runner (metabuild.workers): what a script sees, logs, failures, where the
pool runs, and that it dies with the build."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metabuild import workers
from metabuild.workers import Items, JobScriptError, run_script


class _Namedlist(list):
    """Stand-in for Snakemake's Namedlist: a list with named entries (``items()``)."""

    def __init__(self, values, named):
        super().__init__(values)
        self._named = named

    def items(self):
        return self._named.items()


def _run(tmp_path: Path, body: str, **overrides) -> Path:
    script = tmp_path / "job.py"
    script.write_text(body, encoding="utf-8")
    log = tmp_path / "logs" / "job.log"
    out = tmp_path / "out.txt"
    kwargs = dict(
        rule_name="job",
        input=_Namedlist([str(script), "data/a.csv", "lib/x.py"], {"script": str(script), "code": ["lib/x.py"]}),
        output=_Namedlist([str(out)], {}),
        params=_Namedlist([{"k": [1, 2]}], {"spec": {"k": [1, 2]}}),
        wildcards=_Namedlist(["primary"], {"analysis": "primary"}),
        log=_Namedlist([str(log)], {}),
        config={"data_dir": "data"},
        workers=1,
    )
    kwargs.update(overrides)
    run_script(script, **kwargs)
    return log


def test_items_behave_like_a_namedlist_and_pickle():
    items = Items.from_namedlist(_Namedlist(["a", "b", "c"], {"first": "a", "rest": ["b", "c"]}))
    again = pickle.loads(pickle.dumps(items))
    for it in (items, again):
        assert list(it) == ["a", "b", "c"] and len(it) == 3 and it[1] == "b"
        assert it.first == "a" and it.rest == ["b", "c"] and it["rest"] == ["b", "c"]
        assert dict(it.items()) == {"first": "a", "rest": ["b", "c"]}
        with pytest.raises(AttributeError, match="no item named 'missing'"):
            _ = it.missing
    assert not Items.from_namedlist(_Namedlist([], {}))


def test_script_sees_the_job_and_writes_its_output(tmp_path):
    body = (
        "from pathlib import Path\n"
        "s = snakemake\n"
        "Path(s.output[0]).write_text(\n"
        "    f'{s.rule}|{s.wildcards.analysis}|{s.params.spec[\"k\"]}|{s.input.code}|'\n"
        "    f'{s.config[\"data_dir\"]}|{len(s.input)}'\n"
        ")\n"
    )
    _run(tmp_path, body)
    assert (tmp_path / "out.txt").read_text() == "job|primary|[1, 2]|['lib/x.py']|data|3"


def test_output_of_the_script_and_its_child_programs_goes_to_the_log(tmp_path):
    body = "import subprocess\nprint('from python')\nsubprocess.run(['echo', 'from a child program'], check=True)\n"
    log = _run(tmp_path, body)
    text = log.read_text()
    assert "from python" in text and "from a child program" in text


def test_a_failing_script_names_its_line_and_log(tmp_path):
    with pytest.raises(JobScriptError) as caught:
        _run(tmp_path, "x = 1\nraise ValueError('bad cell')\n")
    message = str(caught.value)
    assert "ValueError: bad cell" in message
    assert "job.py:2" in message and "job.log" in message
    assert "Traceback" in (tmp_path / "logs" / "job.log").read_text()


def test_system_exit_in_a_script_fails_the_job(tmp_path):
    with pytest.raises(JobScriptError, match="SystemExit: consistency gate failed"):
        _run(tmp_path, "raise SystemExit('consistency gate failed')\n")


def test_a_dead_worker_fails_the_job_and_the_next_job_gets_a_new_pool(tmp_path):
    with pytest.raises(RuntimeError, match="died"):
        _run(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    _run(tmp_path, "from pathlib import Path\nPath(snakemake.output[0]).write_text('ok')\n")
    assert (tmp_path / "out.txt").read_text() == "ok"


def test_every_preloaded_module_imports():
    # the forkserver ignores a failing preload import silently; a typo would cost speed only
    import importlib

    for name in workers.PRELOAD:
        importlib.import_module(name)


def test_temporaries_of_a_killed_job_are_removed_before_its_rerun(tmp_path):
    from metabuild.io import temporary_prefix

    out = tmp_path / "out.txt"
    stale_file = tmp_path / f"{temporary_prefix(out)}abc123.tmp"
    stale_dir = tmp_path / f"{temporary_prefix(out)}def456.tmp"
    other = tmp_path / f"{temporary_prefix(tmp_path / 'other.txt')}abc123.tmp"  # another output's
    stale_file.write_text("half a figure")
    stale_dir.mkdir()
    (stale_dir / "paper.docx").write_text("half a document")
    other.write_text("not ours")
    _run(tmp_path, "from pathlib import Path\nPath(snakemake.output[0]).write_text('ok')\n")
    assert not stale_file.exists() and not stale_dir.exists() and other.exists()


def test_the_clean_up_finds_what_the_atomic_writer_leaves(tmp_path, monkeypatch):
    import os

    from metabuild import io

    out = tmp_path / "figure.svg"
    left: list[str] = []

    def killed(src, dst):  # as if SIGKILL came between writing and moving into place
        left.append(src)
        raise SystemExit

    monkeypatch.setattr(os, "replace", killed)
    monkeypatch.setattr(io.Path, "unlink", lambda self, missing_ok=False: None)  # no clean-up ran
    with pytest.raises(SystemExit):
        io.atomic_write(out, lambda handle: handle.write(b"<svg/>"))
    monkeypatch.undo()
    assert [Path(p).exists() for p in left] == [True]
    assert io.remove_stale_temporaries(out) == [Path(left[0])]
    assert not Path(left[0]).exists()


# ------------------------------------------------------------------------------ where jobs run
@pytest.fixture(scope="module")
def snakemake_parser():
    """Snakemake's own command-line parser, without profiles (built once: about 0.3 s)."""
    from snakemake.cli import get_argument_parser

    return get_argument_parser()


@pytest.mark.parametrize(
    "argv, runs_here",
    [
        ([], True),
        (["--cores", "2", "all"], True),
        (["--report", "report.html", "--report-after-run"], True),
        (["--workflow-profile", "none"], False),  # no force-use-threads: a process per job
        (["-n"], False),
        (["--dry-run"], False),
        (["--report", "report.html"], False),
        (["--lint"], False),
        (["--unlock"], False),
        (["--summary"], False),
        (["--list-changes", "code"], False),
        (["--touch"], False),
        (["--dag"], False),
        (["--cleanup-metadata", "results/numbers.json"], False),
        (["--mode", "remote", "--target-jobs", "run_analysis:analysis=primary"], False),
        (["--mode", "subprocess"], False),
    ],
)
def test_the_pool_is_for_a_build_that_runs_jobs_here(snakemake_parser, argv, runs_here):
    # force-use-threads comes from the project's workflow profile, unless it is disabled
    args = snakemake_parser.parse_args(argv if "--workflow-profile" in argv else ["--force-use-threads", *argv])
    assert workers.jobs_run_here(args) is runs_here


def test_no_pool_on_the_host_that_submits_jobs_to_a_cluster(snakemake_parser, monkeypatch):
    from types import SimpleNamespace

    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    args = snakemake_parser.parse_args(["--cores", "2", "--force-use-threads"])
    args.executor = "slurm"  # not installed here: Snakemake's own settings of such a plugin
    cluster = SimpleNamespace(common_settings=SimpleNamespace(local_exec=False, dryrun_exec=False, touch_exec=False))
    real = ExecutorPluginRegistry.get_plugin
    monkeypatch.setattr(
        ExecutorPluginRegistry, "get_plugin", lambda self, name: cluster if name == "slurm" else real(self, name)
    )
    assert not workers.jobs_run_here(args)
    args.executor = "local"
    assert workers.jobs_run_here(args)
    monkeypatch.undo()
    args.executor = "no_such_executor"
    assert not workers.jobs_run_here(args)


def test_start_early_reads_snakemake_s_command_line_and_its_forkserver_ends_with_it(tmp_path):
    """A real Snakemake: the pool starts while a build reads its Snakefile, not for -n,
    --lint or --report; a forkserver still importing when Snakemake ends does not outlive it."""
    (tmp_path / "Snakefile").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(LIBRARY)!r})\n"
        "from metabuild import workers\n"
        "print(f'pool started: {workers.start_early(workflow)}', file=sys.stderr)\n"
        "rule all:\n"
        "    output: 'out.txt'\n"
        "    shell: 'echo ok > {output}'\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(LIBRARY))
    seen = {}
    for name, extra in {"build": [], "dry run": ["-n"], "lint": ["--lint"], "report": ["--report", "r.html"]}.items():
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--force-use-threads", *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        found = re.findall(r"pool started: (\w+)", proc.stderr)
        seen[name] = found[0] if found else proc.stderr[-2000:]
        # the Snakefile is read once per Snakemake; the job (a shell job) needs no pool
        assert len(found) == 1, proc.stderr[-2000:]
    assert seen == {"build": "True", "dry run": "False", "lint": "False", "report": "False"}
    assert (tmp_path / "out.txt").exists()
    assert _wait_until_gone(lambda: _processes_in(tmp_path), 1.0) == []


def test_a_job_snakemake_runs_in_a_process_of_its_own_runs_its_script_there(tmp_path, monkeypatch, capsys):
    """As on a cluster node (``--mode remote``): no pool, the script runs in this process."""
    from types import SimpleNamespace

    monkeypatch.setattr(workers, "_in_process", False)
    assert workers.start_early(SimpleNamespace(is_main_process=False)) is False
    with capsys.disabled():  # print to file descriptor 1, as in Snakemake (not to pytest's capture)
        log = _run(
            tmp_path,
            "import os\nfrom pathlib import Path\nprint('logged')\n"
            "Path(snakemake.output[0]).write_text(str(os.getpid()))\n",
        )
    assert (tmp_path / "out.txt").read_text() == str(os.getpid())
    assert "logged" in log.read_text()


# ------------------------------------------------------------------------------ lifetime
LIBRARY = Path(__file__).resolve().parents[1] / "workflow" / "lib"

#: A stand-in for Snakemake: runs job scripts through run_script, the first one from a thread
#: that has ended before the second starts (the kernel's parent-death signal follows the
#: thread that started the forkserver; the forkserver must survive that thread).
FAKE_BUILD = """
import sys, threading
from metabuild import workers

def job(script, output, pids):
    workers.run_script(script, rule_name="job", input=[script], output=[output], params=[pids],
                       wildcards=[], log=[], config={}, workers=1)

first, second, out, pids = sys.argv[1:]
starter = threading.Thread(target=job, args=(first, out + ".first", pids + ".first"))
starter.start()
starter.join()
job(second, out, pids)
"""

#: Job script: report the PIDs involved, then wait for the build to die and write the output.
LATE_WRITER = """
import json, multiprocessing, os, signal, subprocess, time
from pathlib import Path
from metabuild.io import write_text

pids = {"worker": os.getpid(), "forkserver": os.getppid()}
if STOP_FORKSERVER:  # leave the worker's own check as the only guard
    os.kill(os.getppid(), signal.SIGSTOP)
else:
    pids["program"] = subprocess.Popen(["sleep", "300"]).pid
Path(snakemake.params[0]).write_text(json.dumps(pids))
build = multiprocessing.parent_process()
while build.is_alive():
    time.sleep(0.005)
write_text(snakemake.output[0], "written after the build died")
"""


def _state(pid: int) -> str | None:
    """The process's state letter (``Z``: a zombie, already dead), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[0].decode()


def _living(pids) -> list[int]:
    return [pid for pid in pids if _state(pid) not in (None, "Z")]


def _processes_in(folder: Path) -> list[int]:
    """Living processes working in ``folder`` or naming it on their command line."""
    root = os.path.realpath(folder)
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + os.sep) or root in command) and _living([int(entry.name)]):
            found.append(int(entry.name))
    return found


def _wait_until_gone(living, seconds: float) -> list[int]:
    """Poll ``living()`` for up to ``seconds``; what is still alive then."""
    deadline = time.monotonic() + seconds
    while (alive := living()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def _fake_build(tmp_path: Path, stop_forkserver: bool) -> tuple[subprocess.Popen, dict[str, int], Path]:
    first = tmp_path / "first.py"
    first.write_text("from pathlib import Path\nPath(snakemake.output[0]).write_text('ok')\n")
    second = tmp_path / "late_writer.py"
    second.write_text(f"STOP_FORKSERVER = {stop_forkserver}\n" + LATE_WRITER)
    out, pids = tmp_path / "results" / "out.txt", tmp_path / "pids.json"
    out.parent.mkdir()
    build = subprocess.Popen(
        [sys.executable, "-c", FAKE_BUILD, str(first), str(second), str(out), str(pids)],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(LIBRARY)),
    )
    deadline = time.monotonic() + 120
    while not pids.exists() and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # the file is written in one call; let it be complete
    assert build.poll() is None and pids.exists(), "the fake build did not reach its second job"
    assert (out.parent / "out.txt.first").read_text() == "ok"
    return build, json.loads(pids.read_text()), out


def _kill_leftovers(pids: dict[str, int]) -> None:
    """After a failed test: end what this test started and left running."""
    for pid in _living(pids.values()):
        os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_build_ends_its_forkserver_workers_and_their_programs(tmp_path):
    build, pids, out = _fake_build(tmp_path, stop_forkserver=False)
    try:
        assert _living(pids.values()) == list(pids.values())
        build.kill()
        build.wait()
        assert _wait_until_gone(lambda: _living(pids.values()), 1.0) == [], pids
        assert not out.exists() and not list(out.parent.glob("*.tmp"))
    finally:
        _kill_leftovers(pids)


def test_a_worker_whose_build_died_moves_nothing_into_place(tmp_path):
    build, pids, out = _fake_build(tmp_path, stop_forkserver=True)
    try:
        build.kill()
        build.wait()
        # the worker saw the build die and tried to write; nothing may appear
        assert _wait_until_gone(lambda: _living([pids["worker"]]), 1.0) == []
        assert not out.exists() and not list(out.parent.glob("*.tmp"))
        os.kill(pids["forkserver"], signal.SIGCONT)
        assert _wait_until_gone(lambda: _living([pids["forkserver"]]), 1.0) == []
    finally:
        if _living([pids["forkserver"]]):
            os.kill(pids["forkserver"], signal.SIGCONT)
        _kill_leftovers(pids)


def test_no_output_is_moved_into_place_once_the_build_has_ended(tmp_path, monkeypatch):
    from metabuild import io

    out = tmp_path / "figure.png"
    monkeypatch.setattr(io, "_build_running", None)
    io.set_build_check(lambda: False)
    with pytest.raises(io.BuildEnded, match="figure.png"):
        io.atomic_write(out, lambda handle: handle.write(b"png"))
    assert list(tmp_path.iterdir()) == []
    io.set_build_check(lambda: True)
    io.write_text(out, "ok")
    assert out.read_text() == "ok"


def test_a_worker_that_imports_this_module_itself_is_not_taken_for_the_forkserver(tmp_path):
    """When the forkserver could not import metabuild.workers, each worker imports it; its
    stack then holds the forkserver's, and the worker must not guard itself as the forkserver."""
    script = tmp_path / "job.py"
    script.write_text("from pathlib import Path\nPath(snakemake.output[0]).write_text('ran')\n")
    build = (
        "from metabuild import workers\n"
        "workers.PRELOAD = [m for m in workers.PRELOAD if m != 'metabuild.workers']\n"
        f"workers.run_script({str(script)!r}, rule_name='job', input=[], output=[{str(tmp_path / 'out.txt')!r}],"
        " params=[], wildcards=[], log=[], config={}, workers=1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", build],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(LIBRARY)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out.txt").read_text() == "ran"
