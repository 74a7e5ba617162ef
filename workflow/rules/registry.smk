# The number registry: every number the manuscript shows, with its provenance and the
# value the paper printed; and the reproduction report (reproduced beside published).

NUMBER_SOURCES = [
    *expand(f"{RESULTS}/analyses/{{analysis}}.json", analysis=ANALYSES),
    *expand(f"{RESULTS}/descriptive/{{topic}}.json", topic=DESCRIPTIVE),
    *([f"{RESULTS}/descriptive/grade.json"] if config.get("grade") else []),
]


rule number_registry:
    """Gather every reported number into results/numbers.json (value, text, provenance)."""
    input:
        sources=NUMBER_SOURCES,
        published=data_file("published_values.csv"),
        code=library("registry", "formatting", "provenance", "prov"),
        script=job_script("number_registry"),
    output:
        numbers=f"{RESULTS}/numbers.json",
        prov=f"{RESULTS}/numbers.prov.json",
    log:
        f"{RESULTS}/logs/number_registry.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule sensitivity_plausible:
    """Every pain analysis rerun on the reconstruction with every SD >= 1 (data/curation/)."""
    input:
        plausible=config.get("sensitivity", {}).get("pain_scores", "no-sensitivity-configured"),
        data=ancient(data_file("pain_scores.csv")),
        studies=ancient(data_file("studies.csv")),
        code=library("analysis", "sensitivity", "stats/pooling", "stats/metareg"),
        script=job_script("sensitivity_plausible"),
    output:
        f"{RESULTS}/reports/sensitivity_plausible.json",
    params:
        # the pain analyses' digests cover the cells and configuration they read
        digest=lambda w: "|".join(
            DIGESTS[n] for n, s in ANALYSES.items() if ws.outcome_file(s, config) == "pain_scores.csv"
        ),
        label=config.get("sensitivity", {}).get("label"),
    log:
        f"{RESULTS}/logs/sensitivity_plausible.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule reproduction_report:
    """Every published value beside the reproduced one, with the reason for each mismatch."""
    input:
        numbers=f"{RESULTS}/numbers.json",
        published=data_file("published_values.csv"),
        grade=[data_file("grade.csv")] if "grade.csv" in PRESENT_DATA else [],
        # every data file: the report reads their `source` (reconstructed rows) and study ids
        data=[data_file(f) for f in PRESENT_DATA if f not in ("published_values.csv", "grade.csv")],
        sensitivity=[f"{RESULTS}/reports/sensitivity_plausible.json"] if config.get("sensitivity") else [],
        code=library("report", "registry", "stats/consistency", "stats/power", "formatting", "tables"),
        script=job_script("reproduction_report"),
    output:
        md=f"{RESULTS}/reports/reproduction.md",
        html=report(
            f"{RESULTS}/reports/reproduction.html",
            caption="../report/reproduction.rst",
            category="Documents",
            subcategory="Reproduction report",
            labels={"document": "reproduction report", "format": "HTML"},
        ),
        json=f"{RESULTS}/reports/reproduction.json",
        appendix=f"{RESULTS}/reports/reproduction_appendix.md",
        differences=f"{RESULTS}/reports/differences.md",
    params:
        gate=config.get("consistency_gate", "fail"),
        waivers=config.get("consistency_waivers", {}),
    log:
        f"{RESULTS}/logs/reproduction_report.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
