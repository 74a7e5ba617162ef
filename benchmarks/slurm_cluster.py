"""A throw-away single-node SLURM cluster on 127.0.0.1, for tests and benchmarks.

Debian's ``slurm-wlm`` and ``munge`` (installed by setup.sh) provide the daemons; this module
writes a ``slurm.conf`` into a directory of its own, with free ports chosen at run time and its
own state, spool, socket and log files there, so two clusters started at once (two test runs)
cannot collide. It starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground as its own
children and stops them by PID.

The configuration is the smallest that runs jobs in a container: no cgroups
(``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``, no ``cgroup.conf``), no
accounting database (``AccountingStorageType=accounting_storage/none``: ``sacct`` answers
nothing, so Snakemake's SLURM plugin must ask ``squeue``, and ``MinJobAge`` keeps finished jobs
visible to ``squeue`` long enough). The daemons run as root, as this machine's user is.

Clients (``sbatch``, ``squeue``, ``srun``) find the cluster through ``SLURM_CONF``:
:meth:`Cluster.env` returns an environment with it set.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "unshare")
CLIENTS = ("sbatch", "squeue", "sinfo", "srun", "scontrol", "scancel")
#: seconds a finished job stays visible to squeue (the plugin's status query): far longer than
#: the plugin's status interval, so that no job finishes unseen
MIN_JOB_AGE = 600


def missing_programs() -> list[str]:
    """The daemons and client programs this module needs that are not installed."""
    found = {name: shutil.which(name) or _sbin(name) for name in (*DAEMONS, *CLIENTS)}
    return [name for name, path in found.items() if not path]


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _program(name: str) -> str:
    path = shutil.which(name) or _sbin(name)
    if not path:
        raise FileNotFoundError(f"{name} not found (Debian packages slurm-wlm and munge; see setup.sh)")
    return path


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_memory_mb() -> int:
    """The machine's memory in MB as slurmd counts it (MemTotal), rounded down, so that the
    node's declared RealMemory is never more than slurmd finds (the node would be drained)."""
    text = Path("/proc/meminfo").read_text()
    kib = int(re.search(r"^MemTotal:\s+(\d+) kB", text, re.M).group(1))
    return max(1, kib // 1024 - 64)


class Cluster:
    """One SLURM cluster of one node (``CPUs=2``) whose files all live under ``root``."""

    def __init__(self, root: Path, cpus: int = 2) -> None:
        self.root = Path(root)
        self.cpus = cpus
        self.name = f"mb{os.getpid()}x{int(time.time() * 1000) % 100000}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._namespace: str | None = None
        self.conf = self.root / "slurm.conf"
        self.socket = self.root / "munge" / "munge.socket"
        self.ctld_log = self.root / "slurmctld.log"
        self.slurmd_log = self.root / "slurmd.log"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment in which SLURM's clients talk to this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        # a job's own SLURM variables (when this runs inside a job) would point elsewhere
        for key in [k for k in env if k.startswith(("SLURM_JOB", "SLURM_STEP"))]:
            del env[key]
        return env

    def write_config(self) -> None:
        for sub in ("munge", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        ctld_port, slurmd_port = free_port(), free_port()
        while slurmd_port == ctld_port:
            slurmd_port = free_port()
        host, memory = socket.gethostname(), real_memory_mb()
        self.conf.write_text(
            f"""# written by benchmarks/slurm_cluster.py for one test run
ClusterName={self.name}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.socket}
StateSaveLocation={self.root / "state"}
SlurmdSpoolDir={self.root / "spool"}
SlurmctldPidFile={self.root / "slurmctld.pid"}
SlurmdPidFile={self.root / "slurmd.pid"}
SlurmctldLogFile={self.ctld_log}
SlurmdLogFile={self.slurmd_log}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge={MIN_JOB_AGE}
MailProg=/bin/true
NodeName={self.name}n1 NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName=main Nodes={self.name}n1 Default=YES MaxTime=INFINITE State=UP
""",
            encoding="utf-8",
        )
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)

    def _spawn(self, name: str, args: list[str], prefix: tuple[str, ...] = ()) -> None:
        log = open(self.root / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [*prefix, _program(name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            cwd=self.root,
        )
        log.close()

    def start(self, timeout: float = 60) -> None:
        """Start munged, slurmctld and slurmd; return once ``sinfo`` shows the node idle."""
        self.write_config()
        munge = self.root / "munge"
        self._spawn(
            "munged",
            [
                "--foreground",
                "--force",
                f"--socket={self.socket}",
                f"--key-file={munge / 'munge.key'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._wait(lambda: self.socket.exists(), timeout, "munged's socket")
        self._spawn("slurmctld", ["-D", "-c", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._run("scontrol", "ping").returncode == 0, timeout, "slurmctld")
        # slurmd and everything it starts (the jobs, their `srun`) see this cluster's slurm.conf
        # at the default path, /etc/slurm/slurm.conf, in a mount namespace of their own: the
        # plugin's job step removes SLURM_CONF from the environment of the `srun` it starts
        # (it keeps only the allocation's variables), so srun looks there. unshare and sh exec
        # slurmd, so the PID is slurmd's.
        etc = self.root / "etc-slurm"
        etc.mkdir(exist_ok=True)
        shutil.copy2(self.conf, etc / "slurm.conf")
        self._spawn(
            "slurmd",
            ["-D", "-f", str(self.conf), "-N", f"{self.name}n1"],
            prefix=(
                _program("unshare"),
                "--mount",
                "--propagation=private",
                "sh",
                "-c",
                f'mkdir -p /etc/slurm && mount --bind "{etc}" /etc/slurm && exec "$0" "$@"',
            ),
        )
        self._wait(lambda: self.node_state() == "idle", timeout, "the node to be idle")
        # read once slurmd runs (the node is idle): right after the start, the child may not
        # have left this process's namespace yet, and every process on the machine shares that
        namespace = _mount_namespace(self.processes["slurmd"].pid)
        if namespace is None or namespace == _mount_namespace(os.getpid()):
            raise RuntimeError(f"slurmd is not in a mount namespace of its own ({namespace})")
        self._namespace = namespace

    def node_state(self) -> str:
        out = self._run("sinfo", "--noheader", "--format=%T").stdout.split()
        return out[0].rstrip("*") if out else ""

    def _run(self, name: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([_program(name), *args], env=self.env(), capture_output=True, text=True, timeout=30)

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}:\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        parts = []
        paths = sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")) + [self.root / "munge/munged.log"]
        for path in paths:
            if path.is_file():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def submitted_batch_jobs(self) -> list[int]:
        """The batch jobs slurmctld accepted, from its log (there is no accounting database)."""
        if not self.ctld_log.is_file():
            return []
        text = self.ctld_log.read_text(errors="replace")
        return sorted({int(m) for m in re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text)})

    def cancel_jobs(self, timeout: float = 30) -> None:
        """Cancel every job of this cluster and wait until none runs (a job's slurmstepd would
        outlive slurmd otherwise)."""
        if self.processes.get("slurmctld") is None or self.processes["slurmctld"].poll() is not None:
            return
        self._run("scancel", "--full", "--user=root")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self._run("squeue", "--noheader", "--format=%T", "--states=PENDING,RUNNING,COMPLETING")
            if states.returncode == 0 and not states.stdout.split():
                return
            time.sleep(0.5)

    def stop(self, timeout: float = 20) -> None:
        """Cancel the jobs, then stop the daemons by PID (slurmd, slurmctld, then munged);
        SIGKILL what lingers."""
        try:
            self.cancel_jobs()
        except (OSError, subprocess.SubprocessError):
            pass  # the daemons are stopped below all the same
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()
        # whatever a job left running (slurmstepd, a job's programs) is in slurmd's mount
        # namespace, which nothing else on the machine shares
        for pid in self.job_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def job_processes(self) -> list[int]:
        """The processes of this cluster's jobs and slurmd: those in slurmd's mount namespace."""
        namespace = getattr(self, "_namespace", None)
        if namespace is None or namespace == _mount_namespace(os.getpid()):
            return []  # never the machine's own namespace: that would be every process
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                if _mount_namespace(int(entry.name)) == self._namespace:
                    members.append(int(entry.name))
        return members

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
