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
* Jobs run in the pool only when Snakemake runs ``run:`` jobs in its own process
  (``force-use-threads: true``, set in ``profiles/default/config.yaml``); otherwise Snakemake
  spawns one Snakemake process per job and this module starts a pool there, which is slower
  but gives the same outputs.

Scripts must not keep state between jobs: figures use ``rc_context`` and no pyplot, and the
library's caches hold pure functions of their arguments.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import runpy
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .io import remove_stale_temporaries

#: Modules the forkserver imports once, so that every worker starts with them loaded.
#: ``snakemake.cli``: each new worker re-runs the parent's main script as ``__mp_main__``
#: (multiprocessing's spawn preparation); for the ``snakemake`` launcher that script imports
#: ``snakemake.cli``, 0.5 s per worker unless the forkserver has imported it already.
PRELOAD = [
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

#: Command-line options with which Snakemake runs no job (no pool is worth starting).
NO_JOB_OPTIONS = frozenset(
    "-n --dry-run --dryrun --lint --unlock --summary -S --detailed-summary -D --list-rules --list -l "
    "--list-target-rules --lt --dag --rulegraph --filegraph --d3dag --cleanup-metadata --cm --touch -t "
    "--list-changes --lc --containerize --archive --delete-all-output --delete-temp-output --help -h "
    "--version -v".split()
)


def _forkserver_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_early(argv: Iterable[str]) -> bool:
    """Start the forkserver (and its imports, about 1.3 s) in the background now, so that it
    overlaps Snakemake's DAG building; skipped when ``argv`` asks for no job to run.

    Only a matter of speed: without it the first job starts the forkserver itself."""
    args = list(argv)
    if any(a in NO_JOB_OPTIONS or a.startswith(("--dry-run=", "--lint=")) for a in args[1:]):
        return False
    # returns at once: the forkserver imports PRELOAD in its own process
    _forkserver_context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True


def _get_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=max(1, workers), mp_context=_forkserver_context()
            )
        return _pool


def _discard_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


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
