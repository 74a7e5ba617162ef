# Tables: Markdown files (pipe tables) the manuscript includes, plus CSV for reuse.

TABLES = expand(f"{RESULTS}/tables/{{table}}.md", table=["table1", "table2_grade", "table_s2_adverse_proportions"])


rule table1:
    """Table 1: characteristics of the included trials (with computed cumulative dose)."""
    input:
        studies=ancient(data_file("studies.csv")),
        pain_scores=ancient(data_file("pain_scores.csv")),
        code=library("tables", "stats/dose"),
        script=job_script("table1"),
    output:
        md=f"{RESULTS}/tables/table1.md",
        csv=report(
            f"{RESULTS}/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "table1"},
        ),
    params:
        # the two protocol constants the table uses, not the whole protocol (a change of the
        # female-majority threshold has nothing to redo here)
        protocol={k: config["protocol"][k] for k in ("reference_weight_kg", "high_dose_threshold_mg")},
        digest=ws.cells_digest(DATA, ws.JOB_INPUTS["table1"]),
    log:
        f"{RESULTS}/logs/tables/table1.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule table2_grade:
    """Table 2: GRADE evidence profile (counts and effects computed, certainty derived)."""
    input:
        grade=data_file("grade.csv"),
        risk_of_bias=data_file("risk_of_bias.csv"),
        results=[f"{RESULTS}/analyses/{o['analysis']}.json" for o in config["grade"].values()],
        code=library("tables", "describe"),
        script=job_script("table2_grade"),
    output:
        md=f"{RESULTS}/tables/table2_grade.md",
        csv=report(
            f"{RESULTS}/tables/table2_grade.csv",
            caption="../report/table2_grade.rst",
            category="Tables",
            labels={"table": "table2_grade"},
        ),
        numbers=f"{RESULTS}/descriptive/grade.json",
    params:
        outcomes=config["grade"],
        key_domains=config["risk_of_bias"]["key_domains"],
    log:
        f"{RESULTS}/logs/tables/table2_grade.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule table_s2_adverse_proportions:
    """Supplemental Table 2: pooled incidence of adverse effects per arm (Freeman-Tukey)."""
    input:
        results=[f"{RESULTS}/analyses/{n}.json" for n, s in ANALYSES.items() if s.get("proportions")],
        code=library("tables"),
        script=job_script("table_s2_adverse_proportions"),
    output:
        md=f"{RESULTS}/tables/table_s2_adverse_proportions.md",
        csv=report(
            f"{RESULTS}/tables/table_s2_adverse_proportions.csv",
            caption="../report/table_s2_adverse_proportions.rst",
            category="Tables",
            labels={"table": "table_s2_adverse_proportions"},
        ),
    log:
        f"{RESULTS}/logs/tables/table_s2_adverse_proportions.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
