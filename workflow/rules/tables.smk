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
        csv=f"{RESULTS}/tables/table1.csv",
    params:
        protocol=config["protocol"],
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
        csv=f"{RESULTS}/tables/table2_grade.csv",
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
        csv=f"{RESULTS}/tables/table_s2_adverse_proportions.csv",
    log:
        f"{RESULTS}/logs/tables/table_s2_adverse_proportions.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
