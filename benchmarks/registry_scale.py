"""The number registry at scale (project issue 14): its size, the time to read it, and the time
to render a review's documents from it. Prints figures; asserts nothing.

    python benchmarks/registry_scale.py RESULTS [--render] [--paper RESULTS_OF_THE_PAPER]
                                        [--repeat 3] [--stages] [--schema1]

RESULTS is the results folder of a build (of the project, or of a synthetic review from
``benchmarks/run.py --keep``). Printed, for its ``numbers.json``:

* the file's size, numbers and activities (jobs), and the size the same registry had in the
  layout before its normal form (schema 1: every number carrying its job's full provenance,
  data rows as lists), written here as ``write_json`` writes the registry;
* the time ``read_registry`` takes, and ``json.loads`` of the schema-1 layout;
* with ``--render``: the audit rendering (HTML, DOCX, PDF; pandoc + Typst) of a document that
  cites five numbers of every analysis of the review (estimate, CI, I², k: 500 spans for 100
  analyses), from the registry; with ``--paper``: today's paper (manuscript/paper.qmd) rendered
  the same way from the project's own registry, for comparison. Each rendering runs in a process
  of its own, ``--repeat`` times, the documents interleaved; printed: the median CPU time (user +
  sys of the rendering process and its pandoc children: the machine may be shared, and CPU time
  varies less with its load than wall time) and the median wall time, with the load average;
* with ``--stages``: where each document's rendering goes, in CPU time: each pandoc run (HTML,
  DOCX, the PDF's Typst source) as ``render_document`` runs it, and Typst's compile alone;
* with ``--schema1``: the review's document rendered once from the registry in the schema-1
  layout (each of its three pandocs holds about 4 GB: not on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
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


def registry_figures(results: Path, keep_schema1: bool = False) -> dict[str, Any]:
    """Size and read times of RESULTS/numbers.json; with ``keep_schema1``, its schema-1 layout
    written to a temporary file (``schema1``; hundreds of MB for a large review) to render from."""
    from metabuild.registry import read_registry

    path = Path(results) / "numbers.json"
    t_read, registry = timed(lambda: read_registry(path))
    old = schema1_text(registry)
    t_old, _ = timed(lambda text=old: json.loads(text), repeat=1)
    schema1 = None
    if keep_schema1:
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_seconds(qmd: Path, numbers: Path, outdir: Path, timeout: float) -> tuple[float, float] | None:
    """CPU time (user + sys of the process and its pandoc children) and wall time of the audit
    rendering (HTML, DOCX, PDF) in a process of its own, killed with its pandoc processes after
    ``timeout`` s (then None): from a registry of hundreds of MB, each pandoc holds gigabytes."""
    code = (
        "import sys; from pathlib import Path; from metabuild.render import render_document; "
        "render_document(Path(sys.argv[1]), Path(sys.argv[3]), ('html', 'docx', 'pdf'), Path(sys.argv[2]), "
        "engine='pandoc', variant='audit')"
    )
    lib = str(Path(qmd).resolve().parents[1] / "workflow" / "lib")
    env = dict(os.environ, PYTHONPATH=lib + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cpu0, t0 = _children_cpu(), time.perf_counter()
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
    return _children_cpu() - cpu0, time.perf_counter() - t0


def _medians(times: list[tuple[float, float] | None], timeout: float) -> str:
    done = [t for t in times if t is not None]
    if len(done) < len(times):
        return f"not finished in {timeout:.0f} s (killed)"
    cpu = statistics.median(t[0] for t in done)
    wall = statistics.median(t[1] for t in done)
    each = ", ".join(f"{t[0]:.2f}" for t in done)
    return f"CPU {cpu:.2f} s (each: {each}), wall {wall:.2f} s"


def _documents(results: Path, f: dict[str, Any], paper_results: Path | None) -> list[tuple[str, Path, Path]]:
    """(label, qmd, registry): the review's document, written beside RESULTS, and today's paper."""
    manuscript = Path(results).resolve().parent / "manuscript"
    manuscript.mkdir(exist_ok=True)
    qmd = manuscript / "review.qmd"
    qmd.write_text(review_qmd(f["registry"]), encoding="utf-8")
    spans = qmd.read_text(encoding="utf-8").count("{.num}")
    docs = [
        (f"review document ({spans} number spans) from the registry", qmd, Path(results).resolve() / "numbers.json")
    ]
    if paper_results is not None:
        paper = Path(paper_results).resolve().parent / "manuscript" / "paper.qmd"
        docs.append(("today's paper from its registry", paper, Path(paper_results).resolve() / "numbers.json"))
    return docs


def bench_render(
    results: Path, f: dict[str, Any], paper_results: Path | None, timeout: float, repeat: int, schema1: bool
) -> None:
    """Render times: the review's document from the registry in its normal form and today's paper
    from its own registry (``repeat`` times each, interleaved), and, with ``schema1``, the review's
    document from the schema-1 layout."""
    docs = _documents(results, f, paper_results)
    head = "    audit rendering, HTML + DOCX + PDF (pandoc + Typst):"
    load = os.getloadavg()[0]
    times: dict[str, list] = {label: [] for label, _, _ in docs}
    with tempfile.TemporaryDirectory(prefix="metabuild-registry-bench-") as tmp:
        for i in range(repeat):
            for label, qmd, numbers in docs:
                times[label].append(render_seconds(qmd, numbers, Path(tmp) / f"{i}-{qmd.stem}", timeout))
        print(f"{head} median of {repeat}, interleaved; load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
        for label, _, _ in docs:
            print(f"      {label}: {_medians(times[label], timeout)}", flush=True)
        if schema1:
            t = render_seconds(docs[0][1], f["schema1"], Path(tmp) / "schema1", timeout)
            print(f"      review document from the schema-1 layout: {_medians([t], timeout)}", flush=True)
            shutil.rmtree(f["schema1"].parent, ignore_errors=True)


def _pandoc_commands(qmd: Path, numbers: Path, work: Path) -> tuple[list[tuple[list[str], Path]], str, Path, dict]:
    """The pandoc runs ``render_document`` makes for ``qmd`` (audit; HTML, DOCX, Typst source),
    captured as they run, and the Typst source with its root."""
    from metabuild import render

    qmd = Path(qmd).resolve()
    cfg = dict(render.project_config(qmd), variant="audit", line_numbers=True, provenance_href=None, landscape=[])
    cfg["typst_template"] = None
    if hasattr(render, "_write_subset"):
        cfg["numbers_subset"] = render._write_subset(qmd, numbers, cfg["filters"], work)
    captured: list[tuple[list[str], Path]] = []
    real = subprocess.run

    def capture(cmd, cwd=None, **kwargs):
        captured.append((list(cmd), cwd))
        return real(cmd, cwd=cwd, **kwargs)

    render.subprocess.run = capture
    try:
        render._pandoc_html(qmd, work / "doc.html", cfg, numbers)
        render._pandoc_docx(qmd, work / "doc.docx", cfg, numbers)
        source, root = render._typst_source(qmd, cfg, numbers)
    finally:
        render.subprocess.run = real
    return captured, source, root, cfg


def bench_stages(results: Path, f: dict[str, Any], paper_results: Path | None, repeat: int) -> None:
    """CPU time of each stage of each document's rendering (median of ``repeat``, interleaved)."""
    from metabuild import render

    docs = _documents(results, f, paper_results)
    plan: list[tuple[str, str, list[str], Path | None]] = []
    with tempfile.TemporaryDirectory(prefix="metabuild-registry-stages-") as tmp:
        for n, (label, qmd, numbers) in enumerate(docs):
            work = Path(tmp) / str(n)
            work.mkdir()
            commands, source, root, cfg = _pandoc_commands(qmd, numbers, work)
            for cmd, cwd in commands:
                to = cmd[cmd.index("--to") + 1]
                if "--output" in cmd:
                    cmd[cmd.index("--output") + 1] = str(work / f"out.{to}")
                plan.append((label, f"pandoc to {to}", cmd, cwd))
            (work / "doc.typ").write_text(source, encoding="utf-8")
            fonts = [str(cfg["project_dir"] / d) for d in render.FONT_DIRS if (cfg["project_dir"] / d).is_dir()]
            code = (
                "import sys, typst; typst.compile(open(sys.argv[1], 'rb').read(), root=sys.argv[2], "
                "font_paths=sys.argv[3:], ignore_system_fonts=True, timestamp=0, "
                "sys_inputs={'metabuild-floats': 'auto'})"
            )
            plan.append(
                (
                    label,
                    "Typst compile (its own process)",
                    [sys.executable, "-c", code, str(work / "doc.typ"), str(root), *fonts],
                    None,
                )
            )
        env = render._env()
        cpu: dict[tuple[str, str], list[float]] = {}
        load = os.getloadavg()[0]
        for _ in range(repeat):
            for label, stage, cmd, cwd in plan:
                c0 = _children_cpu()
                subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
                cpu.setdefault((label, stage), []).append(_children_cpu() - c0)
    print(f"    stages, CPU time, median of {repeat} (interleaved; load {load:.1f} -> {os.getloadavg()[0]:.1f}):")
    for label, _, _ in docs:
        stages = {stage: statistics.median(v) for (doc, stage), v in cpu.items() if doc == label}
        parts = ", ".join(f"{stage} {t:.2f} s" for stage, t in stages.items())
        print(f"      {label}: {parts}; sum {sum(stages.values()):.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results folder holding numbers.json")
    parser.add_argument("--render", action="store_true", help="also time the audit rendering of a review document")
    parser.add_argument("--paper", help="results folder of the project's own build: also time today's paper")
    parser.add_argument("--render-timeout", type=float, default=180, help="seconds before a rendering is killed")
    parser.add_argument("--repeat", type=int, default=3, help="renderings of each document (medians printed)")
    parser.add_argument("--stages", action="store_true", help="also time each stage of the renderings (CPU)")
    parser.add_argument("--schema1", action="store_true", help="also render from the schema-1 layout (~4 GB a pandoc)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.results).resolve().parent / "workflow" / "lib"))
    figures = registry_figures(Path(args.results), keep_schema1=args.render and args.schema1)
    print_figures(str(args.results), figures)
    paper = Path(args.paper) if args.paper else None
    if args.render:
        bench_render(Path(args.results), figures, paper, args.render_timeout, args.repeat, args.schema1)
    if args.stages:
        bench_stages(Path(args.results), figures, paper, args.repeat)


if __name__ == "__main__":
    main()
