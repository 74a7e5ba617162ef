"""Run the workflow's job scripts in warm worker processes, one pool per build.

Why this exists: a Snakemake ``script:`` job starts a new Python interpreter, imports
Snakemake to unpickle its preamble, then imports pandas, matplotlib and this library again.
That costs about 1.5 s per job for about 0.1 s of work in an analysis job and 0.5 s in a
figure job (``benchmarks/README.md``), which made the cold build 4 times slower than the same
work in one process. Snakemake has no pool of warm interpreters, so the rules use ``run:``
with one line, :func:`run_script`, and this module keeps the pool:

* The pool is a :class:`concurrent.futures.ProcessPoolExecutor` with as many workers as the
  build has cores, so jobs still run in parallel (threads would share one GIL). Workers fork
  from a ``forkserver`` that has imported the heavy modules once (not from the Snakemake
  process itself, whose threads make ``fork`` unsafe).
* Each job still runs its script file from ``workflow/scripts/`` unchanged (``runpy``), with
  a ``snakemake`` object carrying the same ``input``, ``output``, ``params``, ``wildcards``,
  ``log``, ``rule`` and ``config`` that Snakemake's script preamble would give it.
* Snakemake still schedules, checks outputs, deletes the outputs of a failed or interrupted
  job and records metadata: only the interpreter is reused. A job's stdout and stderr
  (including those of the programs it starts, such as pandoc) go to its ``log:`` file.
* The pool runs only where jobs run: in the Snakemake process that runs ``run:`` jobs itself
  (``force-use-threads: true``, set in ``profiles/default/config.yaml``). It does not start
  for ``-n``, ``--report``, ``--lint``, ``--unlock``, ``--summary`` and the like, nor on the
  host that submits jobs to a cluster (:func:`jobs_run_here`). A job that Snakemake runs in
  a process of its own (a cluster job, ``--mode remote``; or any ``run:`` job without
  ``force-use-threads``) runs its script in that process.
* The pool dies with the build, however the build ends (``kill -9`` included), and a worker
  never moves an output into place after the build has ended (see "Lifetime" below).

Scripts must not keep state between jobs: figures use ``rc_context`` and no pyplot, and the
library's caches hold pure functions of their arguments.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import runpy
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import io
from .io import BuildEnded, remove_stale_temporaries

#: Modules the forkserver imports once, so that every worker starts with them loaded.
#: This module comes first: imported in the forkserver it ties the forkserver's life to the
#: build's before the slow imports (:func:`_guard_forkserver`).
#: ``snakemake.cli``: each new worker re-runs the parent's main script as ``__mp_main__``
#: (multiprocessing's spawn preparation); for the ``snakemake`` launcher that script imports
#: ``snakemake.cli``, 0.5 s per worker unless the forkserver has imported it already.
PRELOAD = [
    "metabuild.workers",
    "snakemake.cli",
    "numpy",
    "pandas",
    "scipy.stats",
    "matplotlib",
    "metabuild.analysis",
    "metabuild.describe",
    "metabuild.figures.forest",
    "metabuild.figures.rob",
    "metabuild.figures.flow",
    "metabuild.registry",
    "metabuild.report",
    "metabuild.render",
    "metabuild.tables",
    "metabuild.provenance",
]


class Items:
    """Positional and named items, like Snakemake's ``Namedlist`` (``input[0]``,
    ``input.result``, iteration over every file), but a plain picklable object."""

    def __init__(self, positional: Iterable[Any] = (), named: Mapping[str, Any] | None = None) -> None:
        self._positional = list(positional)
        self._named = dict(named or {})

    @classmethod
    def from_namedlist(cls, namedlist: Any) -> Items:
        named = dict(namedlist.items()) if hasattr(namedlist, "items") else {}
        return cls([_plain(v) for v in namedlist], {k: _plain(v) for k, v in named.items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._named[name]
        except KeyError:
            raise AttributeError(f"no item named {name!r}") from None

    def __getitem__(self, index: int | str) -> Any:
        return self._named[index] if isinstance(index, str) else self._positional[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._positional)

    def __len__(self) -> int:
        return len(self._positional)

    def __bool__(self) -> bool:
        return bool(self._positional)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._named.items()

    # Pickle the two fields directly: __getattr__ would otherwise be asked for __setstate__.
    def __getstate__(self) -> dict[str, Any]:
        return {"positional": self._positional, "named": self._named}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._positional = state["positional"]
        self._named = state["named"]


@dataclass(frozen=True)
class JobContext:
    """What a script sees as ``snakemake`` (the subset of Snakemake's preamble we use)."""

    rule: str
    input: Items
    output: Items
    params: Items
    wildcards: Items
    log: Items
    config: dict[str, Any]


def _plain(value: Any) -> Any:
    """Snakemake's file and list types as plain str, list and dict (picklable everywhere)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
#: True in a Snakemake process that runs one job of its own (a cluster job, or a ``run:`` job
#: Snakemake started a process for): scripts run right here, one at a time.
_in_process = False
_in_process_lock = threading.Lock()

#: Attributes of Snakemake's parsed command line (``snakemake.cli``) that make it do something
#: other than run jobs (``args_to_api`` does that one thing and returns).
NO_JOB_ACTIONS = (
    "dryrun touch lint list_target_rules list_rules print_compilation containerize generate_unit_tests "
    "dag rulegraph filegraph d3dag unlock cleanup_metadata conda_cleanup_envs conda_create_envs_only "
    "list_conda_envs cleanup_shadow container_cleanup_images list_changes list_input_changes "
    "list_params_changes list_untracked summary detailed_summary archive delete_all_output delete_temp_output"
).split()


def jobs_run_here(args: Any) -> bool:
    """Whether a Snakemake started with the command line ``args`` (as ``snakemake.cli`` parsed
    it, profiles applied) runs jobs in its own process.

    No for a job Snakemake runs in a process of its own (``--mode remote`` on a cluster node,
    ``--mode subprocess``), for a build without ``force-use-threads`` (which starts such a
    process per ``run:`` job), for every action other than a build (``-n``, ``--report``
    without ``--report-after-run``, ``--lint``, ``--unlock``, ``--summary``, ...), and for an
    executor that runs jobs elsewhere (``--executor slurm``: this is then the submitting host)."""
    from snakemake_interface_executor_plugins.settings import ExecMode

    if getattr(args, "mode", ExecMode.DEFAULT) != ExecMode.DEFAULT:
        return False
    if not getattr(args, "force_use_threads", False):
        return False  # Snakemake starts a process of its own for each `run:` job
    if any(getattr(args, name, None) not in (None, False, []) for name in NO_JOB_ACTIONS):
        return False
    if getattr(args, "report", None) is not None and not getattr(args, "report_after_run", False):
        return False
    return _executor_runs_jobs_here(getattr(args, "executor", None) or "local")


def _executor_runs_jobs_here(name: str) -> bool:
    """Whether Snakemake's executor plugin ``name`` runs jobs on this machine (as Snakemake's
    own settings of the plugin say: ``local_exec``, and neither dry-run nor touch)."""
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    try:
        settings = ExecutorPluginRegistry().get_plugin(name).common_settings
    except Exception:  # noqa: BLE001 - an executor Snakemake does not know runs nothing here
        return False
    return bool(settings.local_exec and not settings.dryrun_exec and not settings.touch_exec)


def snakemake_command_line() -> Any | None:
    """The running Snakemake's command line as its CLI parsed it (profiles applied): the
    ``args`` of ``snakemake.cli.args_to_api``, which is up the stack while the Snakefile is
    read. None when Snakemake was started from Python (its API has no command line).

    Read from the stack because parsing ``sys.argv`` again with Snakemake's parser costs about
    0.3 s before the DAG is built, and the executor may come from a profile."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "args_to_api" and frame.f_globals.get("__name__") == "snakemake.cli":
            return frame.f_locals.get("args")
        frame = frame.f_back
    return None


def _forkserver_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    # the forkserver checks that its parent is the build (the build may die before it looks)
    os.environ[_BUILD_PID_VARIABLE] = str(os.getpid())
    return context


def start_early(workflow: Any, likely_jobs: bool = True) -> bool:
    """Decide where this Snakemake process runs job scripts; when in the pool, start the
    forkserver (and its imports, about 1.3 s) in the background now, so that it overlaps
    Snakemake's DAG building. Returns whether it started.

    Called while the Snakefile is read (``workflow`` is Snakemake's ``workflow`` object).
    The early start is only a matter of speed: when Snakemake's command line cannot be read
    (a build started from Python), the first job starts the pool. With ``likely_jobs`` false
    (nothing the jobs read changed: most likely a no-op rebuild, whose CPU time the forkserver's
    imports would almost double) it does not start now; the Snakefile calls this again once
    Snakemake has found jobs to run (``onstart``), which starts it then."""
    global _in_process
    if not workflow.is_main_process:
        # Snakemake runs this job in a process of its own: a pool would only add its start-up
        _in_process = True
        return False
    if not likely_jobs:
        return False
    args = snakemake_command_line()
    if args is None or not jobs_run_here(args):
        return False
    # returns at once: the forkserver imports PRELOAD in its own process
    _forkserver_context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True


def _get_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _closed:
            raise RuntimeError("the job workers have been closed (the preview is stopping)")
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=max(1, workers), mp_context=_forkserver_context(), initializer=_start_worker
            )
        return _pool


def _discard_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


# ------------------------------------------------------------ a pool for several builds
# `metabuild preview` runs one Snakemake after another in its own process (Snakemake's API):
# the pool, a module global, then serves every build. These three calls are its lifetime.
_closed = False


def keep_warm(workers: int) -> None:
    """Start the pool and its ``workers`` processes now, for a process that runs several
    builds (ProcessPoolExecutor otherwise forks a worker only when a job finds none idle)."""
    pool = _get_pool(workers)
    concurrent.futures.wait([pool.submit(os.getpid) for _ in range(max(1, workers))])


def close_pool() -> None:
    """End the pool now: refuse further jobs and kill the forkserver and the workers, so that
    running jobs fail at once (Snakemake then deletes their outputs, as after a failed job).
    For a process that ends afterwards: :func:`end_descendants` then ends what is left."""
    global _closed, _pool
    with _lock:
        _closed = True
        pool, _pool = _pool, None
    if pool is None:
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    # The forkserver first: its workers die with it (PR_SET_PDEATHSIG), and the programs they
    # ran (pandoc) come to this process, not to the forkserver (which would reap them with a
    # warning each). multiprocessing has no public call for its forkserver's PID.
    from multiprocessing import forkserver

    server = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if server:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()


def become_subreaper() -> bool:
    """Make this process the parent of its orphaned descendants (a killed worker's pandoc),
    so that :func:`end_descendants` finds them. False where Linux's prctl is unavailable."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def end_descendants(spare: Iterable[int] = ()) -> None:
    """SIGKILL every process this one started (the forkserver, workers, their programs) but
    ``spare``, generation by generation (orphans come back to a subreaper)."""
    spared = set(spare)
    while children := [pid for pid in _children(os.getpid()) if pid not in spared]:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def run_script(
    script: str | os.PathLike[str],
    *,
    rule_name: str,
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    config: Mapping[str, Any],
    workers: int,
) -> None:
    """Run ``script`` for one Snakemake job in a warm worker; raise if the script failed.

    Called from a rule's ``run:`` block with the job's own objects; ``workers`` is the
    build's core count (the pool is sized once, by the first job of the build).
    """
    context = JobContext(
        rule=rule_name,
        input=Items.from_namedlist(input),
        output=Items.from_namedlist(output),
        params=Items.from_namedlist(params),
        wildcards=Items.from_namedlist(wildcards),
        log=Items.from_namedlist(log),
        config=_plain(dict(config)),
    )
    # A job killed mid-write (SIGKILL skips its clean-up) leaves its temporary files beside
    # its outputs; Snakemake removes the outputs of incomplete jobs, not those.
    for path in context.output:
        remove_stale_temporaries(path)
    if _in_process:
        with _in_process_lock:  # one job at a time: the log redirection is process-wide
            _run_in_worker(str(script), context, os.getcwd())
        return
    try:
        future = _get_pool(workers).submit(_run_in_worker, str(script), context, os.getcwd())
        future.result()
    except concurrent.futures.process.BrokenProcessPool as error:
        # A worker died (killed, or out of memory): start a new pool for the next job, and
        # fail this one with an ordinary exception (Snakemake treats BrokenProcessPool as an
        # interrupt of its own pool and would not report the job as failed).
        _discard_pool()
        raise RuntimeError(f"the worker running {script} for rule {rule_name} died: {error}") from None


class JobScriptError(Exception):
    """A job's script failed; the message names the script line and the log file."""


def _run_in_worker(script: str, context: JobContext, cwd: str) -> None:
    """Worker side: run the script with ``snakemake`` bound, its output sent to the log."""
    os.chdir(cwd)
    log_path = context.log[0] if len(context.log) else None
    saved = _redirect_output(log_path) if log_path else None
    try:
        runpy.run_path(script, init_globals={"snakemake": context}, run_name="__main__")
    except BuildEnded:
        os._exit(1)  # the build is gone: nobody waits for this job, and nothing more is written
    except BaseException as error:  # also SystemExit from a script, which must fail the job
        traceback.print_exc()
        raise JobScriptError(_describe_failure(script, error, log_path)) from None
    finally:
        if saved is not None:
            _restore_output(saved)


def _describe_failure(script: str, error: BaseException, log_path: str | None) -> str:
    """The error, and where in the job's script (or the library) it was raised."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename not in (__file__, runpy.__file__)]
    ours = [f for f in frames if f.filename == script or "workflow/" in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    lines = [f"{type(error).__name__}: {error}"]
    if where is not None:
        lines.append(f"  raised at {os.path.relpath(where.filename)}:{where.lineno} ({where.name})")
    lines.append(f"  in the job script {script}" + (f"; full traceback in {log_path}" if log_path else ""))
    return "\n".join(lines)


def _redirect_output(log_path: str) -> tuple[int, int]:
    """Point file descriptors 1 and 2 at the job's log (so child programs write there too).
    A worker runs one job at a time, so this cannot mix two jobs' output."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return saved


def _restore_output(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    os.close(saved[0])
    os.close(saved[1])


# ------------------------------------------------------------------------------ lifetime
# The pool dies with the build, however the build ends. Who is whose parent: the build
# (Snakemake) starts the forkserver; the forkserver forks the workers; the workers start
# programs (pandoc). A ``kill -9`` of Snakemake runs none of its clean-up, and the workers
# hold the forkserver's own "alive" pipe open, so multiprocessing alone leaves them all
# running (they kept writing into results/ after Snakemake died). Hence:
#
# * The forkserver asks the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``):
#   SIGKILL until it forks its first worker, then a signal it handles. It is the "subreaper"
#   of its descendants (``PR_SET_CHILD_SUBREAPER``: the children of a killed worker become its
#   children, not init's). On the signal it SIGKILLs its children generation by generation
#   until none is left, then exits. The kernel sends the signal when the parent *thread* ends,
#   too; the forkserver then still has the build as its parent process and ignores it (it gets
#   the signal again when the build itself ends).
# * Each worker asks for SIGKILL when the forkserver dies (in case the forkserver itself is
#   killed), and before moving any output into place checks that the build is alive
#   (``metabuild.io.move_into_place``), through multiprocessing's pipe from the build whose
#   end the kernel closes when the build dies.

#: Environment variable holding the PID of the build that starts the forkserver.
_BUILD_PID_VARIABLE = "METABUILD_BUILD_PID"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: The signal the forkserver gets when its parent thread or process ends.
_PARENT_DIED = signal.SIGUSR1
#: Set in the forkserver (workers inherit it): the forkserver's PID.
_forkserver_pid: int | None = None


def _prctl(option: int, value: int) -> bool:
    """Linux ``prctl(option, value)``; False where it is unavailable (not Linux).
    Through ctypes: the standard library has no binding, and python-prctl must be compiled
    against libcap for two calls."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return (
        libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        == 0
    )


def _imported_by_forkserver() -> bool:
    """Whether this module is being imported by multiprocessing's forkserver itself (as
    PRELOAD), not by a worker it forked (whose stack holds the forkserver's, below
    ``_serve_one``: a worker imports this module when the forkserver could not)."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None or _BUILD_PID_VARIABLE not in os.environ:
        return False
    frame: Any = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver._serve_one.__code__:
            return False
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


def _guard_forkserver() -> None:
    """In the forkserver: end the pool as soon as the build's process has ended."""
    global _forkserver_pid
    build = int(os.environ[_BUILD_PID_VARIABLE])
    _forkserver_pid = os.getpid()
    # Until it forks a worker the forkserver has nothing to clean up: it dies with its parent
    # at once, even in the middle of an import. (The thread that starts it, Snakemake's main
    # thread or a job's, waits for the first fork: a SIGKILL on that thread's end cannot come.)
    if not (_prctl(_PR_SET_CHILD_SUBREAPER, 1) and _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)):
        return  # not Linux: multiprocessing's own clean-up is all there is
    if os.getppid() != build:
        os._exit(0)  # the build died before the prctl
    signal.signal(_PARENT_DIED, lambda *_: _end_pool_if_orphaned(build))
    os.register_at_fork(before=_before_fork)


def _before_fork() -> None:
    """In the forkserver, before it forks a worker: from now on its parent's death must end
    the workers too (a SIGKILL would leave them running), so it gets a signal it handles."""
    if os.getpid() == _forkserver_pid:  # (a worker inherits this hook)
        _prctl(_PR_SET_PDEATHSIG, _PARENT_DIED)


def _end_pool_if_orphaned(build: int) -> None:
    if os.getppid() == build:
        return  # the thread of the build that started the forkserver ended, not the build
    _kill_descendants()
    os._exit(0)


def _kill_descendants() -> None:
    """SIGKILL the children of this process, then the children those leave to it (it is their
    subreaper), until none is left."""
    while children := _children(os.getpid()):
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _children(parent: int) -> list[int]:
    """PIDs of the processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # ended meanwhile
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses
        if int(stat[stat.rindex(b")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def _start_worker() -> None:
    """In each new worker (ProcessPoolExecutor's initializer): die with the forkserver, and
    move no output into place once the build has ended."""
    signal.signal(_PARENT_DIED, signal.SIG_DFL)  # the forkserver's handler, inherited by fork
    if _forkserver_pid is not None and _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != _forkserver_pid:
        os._exit(1)  # the forkserver died before the prctl
    build = multiprocessing.parent_process()  # the build, seen through a pipe the kernel closes when it dies
    if build is not None:
        io.set_build_check(build.is_alive)


if _imported_by_forkserver():
    _guard_forkserver()
