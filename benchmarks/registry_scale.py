"""The number registry at scale (project issue 14): its size, the time to read it, and the time
to render a review's documents from it. Prints figures; asserts nothing.

    python benchmarks/registry_scale.py RESULTS [--render] [--paper RESULTS_OF_THE_PAPER]

RESULTS is the results folder of a build (of the project, or of a synthetic review from
``benchmarks/run.py --keep``). Printed, for its ``numbers.json``:

* the file's size, numbers and activities (jobs), and the size the same registry had in the
  layout before its normal form (schema 1: every number carrying its job's full provenance,
  data rows as lists), written here as ``write_json`` writes the registry;
* the time ``read_registry`` takes, and ``json.loads`` of the schema-1 layout;
* with ``--render``: the audit rendering (HTML, DOCX, PDF; pandoc + Typst) of a document that
  cites five numbers of every analysis of the review (estimate, CI, I², k: 500 spans for 100
  analyses), from the registry in its normal form and from the same registry in the schema-1
  layout; with ``--paper``: today's paper (manuscript/paper.qmd) rendered the same way from the
  project's own registry, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
STATS = ("estimate", "ci_lower", "ci_upper", "i2", "k")


def schema1_text(registry: dict[str, Any]) -> str:
    """The registry as schema 1 stored it (full provenance in every number), serialised as
    :func:`metabuild.io.write_json` serialises the registry."""
    from metabuild.io import finite
    from metabuild.registry import full_entries

    old = {"schema": "metabuild-numbers/1", "numbers": full_entries(registry)}
    return json.dumps(finite(old), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def timed(fn, repeat: int = 3) -> tuple[float, Any]:
    """Best of ``repeat`` wall times of ``fn()``, and its result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def registry_figures(results: Path) -> dict[str, Any]:
    from metabuild.registry import read_registry

    path = Path(results) / "numbers.json"
    t_read, registry = timed(lambda: read_registry(path))
    old = schema1_text(registry)
    t_old, _ = timed(lambda text=old: json.loads(text), repeat=1)
    # kept on disk, not in memory, for the rendering from it (a pandoc holds gigabytes of it)
    schema1 = Path(tempfile.mkdtemp(prefix="metabuild-registry-bench-")) / "numbers.schema1.json"
    # the filter reads a {"numbers": ...} registry with the provenance nested in each number (no
    # schema: the filter refuses schema 1 by name, but reads its shape unchanged)
    schema1.write_text(old.replace('"schema": "metabuild-numbers/1"', '"schema": null', 1), encoding="utf-8")
    schema1_bytes = len(old.encode("utf-8"))
    del old
    return {
        "bytes": path.stat().st_size,
        "schema1_bytes": schema1_bytes,
        "numbers": len(registry["numbers"]),
        "activities": len(registry["activities"]),
        "read_s": t_read,
        "schema1_parse_s": t_old,
        "registry": registry,
        "schema1": schema1,
    }


def print_figures(label: str, f: dict[str, Any]) -> None:
    mb = 1024 * 1024
    print(
        f"    registry {label}: {f['bytes'] / mb:.2f} MB ({f['numbers']} numbers, {f['activities']} activities); "
        f"schema-1 layout of the same numbers {f['schema1_bytes'] / mb:.1f} MB "
        f"(x{f['schema1_bytes'] / max(f['bytes'], 1):.0f}); read_registry {f['read_s']:.2f} s, "
        f"json.loads of schema 1 {f['schema1_parse_s']:.2f} s",
        flush=True,
    )


def review_qmd(registry: dict[str, Any]) -> str:
    """A results section citing five numbers of every analysis the registry holds."""
    analyses = sorted({k.split(".")[0] for k in registry["numbers"] if k.endswith(".estimate") and k.count(".") == 1})
    lines = ["---", 'title: "Synthetic review"', "---", "", "# Results", ""]
    for name in analyses:
        have = [s for s in STATS if f"{name}.{s}" in registry["numbers"]]
        spans = "; ".join(f"{s} [{name}.{s}]{{.num}}" for s in have)
        lines += [f"Analysis {name.replace('_', ' ')}: {spans}.", ""]
    return "\n".join(lines)


def render_seconds(qmd: Path, numbers: Path, outdir: Path, timeout: float) -> float | None:
    """Wall time of the audit rendering (HTML, DOCX, PDF) in a process of its own, killed with
    its pandoc processes after ``timeout`` s (then None): from a registry of hundreds of MB, each
    pandoc holds gigabytes, and the machine is shared."""
    code = (
        "import sys; from pathlib import Path; from metabuild.render import render_document; "
        "render_document(Path(sys.argv[1]), Path(sys.argv[3]), ('html', 'docx', 'pdf'), Path(sys.argv[2]), "
        "engine='pandoc', variant='audit')"
    )
    lib = str(Path(qmd).resolve().parents[1] / "workflow" / "lib")
    env = dict(os.environ, PYTHONPATH=lib + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", code, str(qmd), str(numbers), str(outdir)], env=env, start_new_session=True
    ) as p:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None
    if p.returncode != 0:
        raise RuntimeError(f"rendering {qmd} from {numbers} failed (exit {p.returncode})")
    return time.perf_counter() - t0


def _seconds(t: float | None, timeout: float) -> str:
    return f"{t:.1f} s" if t is not None else f"not finished in {timeout:.0f} s (killed)"


def bench_render(results: Path, f: dict[str, Any], paper_results: Path | None, timeout: float) -> None:
    """Render times: the review's document from the registry in its normal form, today's paper
    from its own registry, and the review's document from the schema-1 layout."""
    manuscript = Path(results).resolve().parent / "manuscript"
    manuscript.mkdir(exist_ok=True)
    qmd = manuscript / "review.qmd"
    qmd.write_text(review_qmd(f["registry"]), encoding="utf-8")
    spans = qmd.read_text(encoding="utf-8").count("{.num}")
    head = "    audit rendering, HTML + DOCX + PDF (pandoc + Typst):"
    with tempfile.TemporaryDirectory(prefix="metabuild-registry-bench-") as tmp:
        t = render_seconds(qmd, Path(results).resolve() / "numbers.json", Path(tmp) / "a", timeout)
        print(f"{head} review document ({spans} number spans) from the normal form {_seconds(t, timeout)}", flush=True)
        if paper_results is not None:
            paper = Path(paper_results).resolve().parent / "manuscript" / "paper.qmd"
            t = render_seconds(paper, Path(paper_results).resolve() / "numbers.json", Path(tmp) / "c", timeout)
            print(f"{head} today's paper from its registry {_seconds(t, timeout)}", flush=True)
        t = render_seconds(qmd, f["schema1"], Path(tmp) / "b", timeout)
        print(f"{head} review document from the schema-1 layout {_seconds(t, timeout)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results folder holding numbers.json")
    parser.add_argument("--render", action="store_true", help="also time the audit rendering of a review document")
    parser.add_argument("--paper", help="results folder of the project's own build: also time today's paper")
    parser.add_argument("--render-timeout", type=float, default=180, help="seconds before a rendering is killed")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.results).resolve().parent / "workflow" / "lib"))
    figures = registry_figures(Path(args.results))
    print_figures(str(args.results), figures)
    if args.render:
        bench_render(Path(args.results), figures, Path(args.paper) if args.paper else None, args.render_timeout)


if __name__ == "__main__":
    main()
