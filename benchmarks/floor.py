"""The floor: the statistics, figures, tables, registry and documents of one build made in ONE
Python process without Snakemake. Run in a copy of the project:

    cd <copy> && python benchmarks/floor.py [--no-render] [--json out.json]

Prints (and optionally writes) a JSON dict of seconds per stage. Figure time is split into
drawing (building the Matplotlib figure) and saving (the SVG/PNG renderers), document time
per document. Mirrors workflow/scripts/*.py (same library calls, same outputs under
results_dir) with a stand-in for the ``snakemake`` object so provenance is recorded too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

T0 = time.perf_counter()
ROOT = Path.cwd()
sys.path.insert(0, str(ROOT / "workflow" / "lib"))

TIMES: dict[str, float] = {}
ERRORS: dict[str, str] = {}


@contextmanager
def timed(name: str):
    start = time.perf_counter()
    try:
        yield
    except Exception as error:  # noqa: BLE001 - a broken stage is reported, the rest still measured
        ERRORS[name] = f"{type(error).__name__}: {error}"[:2000]
        if "--verbose" in sys.argv:
            traceback.print_exc()
    finally:
        TIMES[name] = TIMES.get(name, 0.0) + time.perf_counter() - start


def fake_job(rule, inputs, outputs, params=None, wildcards=None, config=None):
    """The ``snakemake`` object a workflow job gets (metabuild.workers.JobContext);
    ``inputs`` is a list, or a dict for named inputs."""
    from metabuild.workers import Items, JobContext

    def named(mapping):
        return Items(list((mapping or {}).values()), mapping)

    return JobContext(
        rule=rule,
        input=named(inputs) if isinstance(inputs, dict) else Items(inputs),
        output=Items(outputs),
        params=named(params),
        wildcards=named(wildcards),
        log=Items(),
        config=config or {},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    with timed("import"):
        import pandas as pd
        import yaml
        from snakemake.utils import validate

        from metabuild import analysis, data, describe, review, tables
        from metabuild import workflow_support as ws
        from metabuild.figures import common, flow, forest, rob
        from metabuild.io import read_json, write_json, write_text
        from metabuild.provenance import job_provenance
        from metabuild.registry import build_registry

    with timed("config"):
        config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
        validate(config, str(ROOT / "config" / "schemas" / "config.schema.yaml"))  # sets defaults
        ws.check_config(config)
    data_dir, res = Path(config["data_dir"]), Path(config["results_dir"])
    with timed("validate_data"):
        data.validate_dataset(data_dir)
    with timed("load_data"):
        dataset = data.load_dataset(data_dir)

    # ---------------------------------------------------------------- statistics
    results = {}
    with timed("analyses"):
        for name, spec in config["analyses"].items():
            with timed(f"analysis:{name}"):
                result = analysis.run_analysis(name, spec, dataset, config)
                job = fake_job(
                    "run_analysis",
                    [str(data_dir / "studies.csv"), str(data_dir / ws.outcome_file(spec))],
                    [str(res / "analyses" / f"{name}.json")],
                    {"spec": spec},
                    {"analysis": name},
                )
                result["provenance"] = job_provenance(job, data_rows=result["data_rows"], study_ids=result["study_ids"])
                write_json(res / "analyses" / f"{name}.json", result)
                results[name] = result
    TIMES["analyses_per_job_mean"] = TIMES["analyses"] / max(1, len(config["analyses"]))
    for key in [k for k in TIMES if k.startswith("analysis:")]:
        TIMES.pop(key)
    with timed("descriptive"):
        topics = {**describe.TOPICS, **{name: entry[0] for name, entry in review.topics(config).items()}}
        for topic, files in ws.descriptive_inputs(config).items():
            with timed(f"descriptive:{topic}"):
                numbers, rows = topics[topic](dataset if files else None, ws.descriptive_settings(topic, config))
                job = fake_job(
                    "describe",
                    [str(data_dir / f) for f in files],
                    [str(res / "descriptive" / f"{topic}.json")],
                    {},
                    {"topic": topic},
                )
                write_json(
                    res / "descriptive" / f"{topic}.json",
                    {"topic": topic, "numbers": numbers, "provenance": job_provenance(job, data_rows=rows)},
                )

    # ---------------------------------------------------------------- figures: drawing vs saving
    save_time = [0.0]
    original_save = common.save_figure

    def timed_save(fig, stem):
        start = time.perf_counter()
        try:
            return original_save(fig, stem)
        finally:
            save_time[0] += time.perf_counter() - start

    for module in (forest, rob, flow):
        if hasattr(module, "save_figure"):
            module.save_figure = timed_save
    # the SVG and the 300-dpi PNG apart (save_figure calls these two)
    format_time = {"svg": 0.0, "png": 0.0}

    def timed_format(kind, save):
        def timed(fig, path):
            start = time.perf_counter()
            try:
                return save(fig, path)
            finally:
                format_time[kind] += time.perf_counter() - start

        return timed

    if hasattr(common, "save_png"):
        common.save_svg = timed_format("svg", common.save_svg)
        common.save_png = timed_format("png", common.save_png)
    figures = {spec["figure"]: name for name, spec in config["analyses"].items() if spec.get("figure")}
    fig_start = time.perf_counter()
    with timed("figures:forest"):
        for stem, name in figures.items():
            forest.forest_plot(results[name], res / "figures" / stem)
    with timed("figures:leave_one_out"):
        primary = results["primary"]
        forest.leave_one_out_plot(
            primary["leave_one_out"],
            primary["pooled"],
            res / "figures" / "leave_one_out",
            measure=primary["measure"],
            favours=review.favours(config),
        )
    with timed("figures:risk_of_bias"):
        domains = dict(config["risk_of_bias"]["domains"])
        rows = describe.risk_of_bias_rows(
            pd.read_csv(data_dir / "studies.csv"),
            pd.read_csv(data_dir / "risk_of_bias.csv"),
            domains,
            list(config["risk_of_bias"]["key_domains"]),
        )
        rob.risk_of_bias_grid(
            rows,
            res / "figures" / "risk_of_bias",
            domains=[*domains.items(), ("overall", "Overall (derived from key domains)")],
        )
    with timed("figures:flow"):
        numbers = read_json(res / "descriptive" / "flow.json")["numbers"]
        counts = {key.removeprefix("flow."): entry["value"] for key, entry in numbers.items()}
        counts.setdefault("included_qualitative", counts["included"])
        counts.setdefault("included_quantitative", counts["included"])
        flow.prisma_flow(counts, res / "figures" / "flow")
    figure_total = time.perf_counter() - fig_start
    TIMES["figures_saving_svg_png"] = save_time[0]
    if hasattr(common, "save_png"):
        TIMES["figures_saving_svg"] = format_time["svg"]
        TIMES["figures_saving_png"] = format_time["png"]
    TIMES["figures_drawing"] = figure_total - save_time[0]

    # ---------------------------------------------------------------- tables, registry, report
    with timed("tables"):
        table1, _, table1_settings = review.tables(config)["table1"]
        frame, table1_notes = table1(dataset, table1_settings(config))
        write_text(res / "tables" / "table1.md", tables.markdown_table(frame, table1_notes))
        write_text(res / "tables" / "table1.csv", frame.to_csv(index=False, lineterminator="\n"))
        grade = pd.read_csv(data_dir / "grade.csv", keep_default_na=False, na_values=[""])
        rob = pd.read_csv(data_dir / "risk_of_bias.csv", keep_default_na=False)
        frame, notes, numbers = tables.grade_profile(
            grade,
            rob,
            results,
            config["grade"],
            config["risk_of_bias"]["key_domains"],
            measure_note=config.get("grade_note"),
        )
        write_text(res / "tables" / "table2_grade.md", tables.markdown_table(frame, notes))
        write_text(res / "tables" / "table2_grade.csv", frame.to_csv(index=False, lineterminator="\n"))
        job = fake_job("table2_grade", [str(data_dir / "grade.csv")], [str(res / "descriptive" / "grade.json")])
        write_json(
            res / "descriptive" / "grade.json",
            {"topic": "grade", "numbers": numbers, "provenance": job_provenance(job)},
        )
        frame = tables.table_s2([r for r in results.values() if "proportions" in r])
        write_text(res / "tables" / "table_s2_adverse_proportions.md", tables.markdown_table(frame, ["note"]))
    with timed("registry"):
        from metabuild.prov import registry_to_prov

        sources = [res / "analyses" / f"{n}.json" for n in config["analyses"]]
        sources += [res / "descriptive" / f"{t}.json" for t in [*ws.descriptive_inputs(config), "grade"]]
        from metabuild.registry import resolve

        stored = build_registry(sources, data_dir / "published_values.csv")
        write_json(res / "numbers.json", stored)
        registry = resolve(stored, str(res / "numbers.json"))
        write_json(res / "numbers.prov.json", registry_to_prov(registry))
    sensitivity = None
    if config.get("sensitivity"):
        with timed("sensitivity"):
            # the workflow's own script, run here with the same `snakemake` object a job gets
            import runpy

            target = res / "reports" / "sensitivity_plausible.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            plausible = {"plausible": config["sensitivity"]["pain_scores"]}
            job = fake_job("sensitivity_plausible", plausible, [str(target)], config=config)
            runpy.run_path("workflow/scripts/sensitivity_plausible.py", init_globals={"snakemake": job})
            sensitivity = read_json(target)
    with timed("report"):
        from metabuild.report import reproduction_report

        published = pd.read_csv(data_dir / "published_values.csv", dtype=str, keep_default_na=False)
        report = reproduction_report(registry, published, str(data_dir), sensitivity=sensitivity)
        write_json(res / "reports" / "reproduction.json", report.data)
        write_text(res / "reports" / "reproduction.md", report.markdown)
        write_text(res / "reports" / "reproduction.html", report.html)
        write_text(res / "reports" / "reproduction_appendix.md", report.appendix)
        write_text(res / "reports" / "differences.md", report.differences)
    with timed("claims"):
        from metabuild.claims import check_document

        for document in config["manuscript"]["documents"]:
            check_document(Path("manuscript") / f"{document}.qmd", registry["numbers"])

    # ---------------------------------------------------------------- documents
    if not args.no_render:
        try:
            from metabuild.render import render_document
        except ImportError as error:
            ERRORS["render"] = f"render module not importable: {error}"
        else:
            # both renderings the build makes (config manuscript.variants): audit and submission
            folders = {"audit": "manuscript", "submission": "submission"}
            for variant in config["manuscript"].get("variants", ["audit", "submission"]):
                for document in config["manuscript"]["documents"]:
                    with timed(f"render:{document}:{variant}"):
                        render_document(
                            Path("manuscript") / f"{document}.qmd",
                            res / folders[variant],
                            formats=tuple(config["manuscript"]["formats"]),
                            numbers_file=res / "numbers.json",
                            engine=config["manuscript"]["engine"],
                            variant=variant,
                        )
    TIMES["total_in_process"] = time.perf_counter() - T0
    out = {
        "seconds": {k: round(v, 3) for k, v in TIMES.items()},
        "errors": ERRORS,
        "n_analyses": len(config["analyses"]),
        "n_figures": len(figures) + 3,
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
