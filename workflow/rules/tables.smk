# Tables: Markdown files (pipe tables) the manuscript includes, plus CSV for reuse.

# tables of study characteristics (the review module's, or config table1) -> data cells read
STUDY_TABLES = ws.table_inputs(config)
TABLES = expand(
    f"{RESULTS}/tables/{{table}}.md",
    table=[
        *STUDY_TABLES,
        *(["table2_grade"] if config.get("grade") else []),
        *(["table_s2_adverse_proportions"] if any(s.get("proportions") for s in ANALYSES.values()) else []),
    ],
)


rule table1:
    """A table of study characteristics (Table 1): the review module's, or config table1's columns."""
    input:
        data=lambda w: [ancient(data_file(f)) for f in STUDY_TABLES[w.table]],
        code=library("tables", "review"),
        review_code=REVIEW_CODE,
        script=job_script("table1"),
    output:
        md=f"{RESULTS}/tables/{{table}}.md",
        csv=report(
            f"{RESULTS}/tables/{{table}}.csv",
            caption="../report/table1.rst",
            category="Tables",
            labels=lambda w: {"table": w.table},
        ),
    params:
        # what the table reads of the configuration (a change of another entry has nothing to redo here)
        settings=lambda w: ws.table_settings(w.table, config),
        digest=lambda w: PLAN.tables[w.table],
    wildcard_constraints:
        table="|".join(STUDY_TABLES) or "no-study-table",
    log:
        f"{RESULTS}/logs/tables/{{table}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule table2_grade:
    """Table 2: GRADE evidence profile (counts and effects computed, certainty derived)."""
    input:
        grade=data_file("grade.csv"),
        risk_of_bias=data_file("risk_of_bias.csv"),
        results=[f"{RESULTS}/analyses/{o['analysis']}.json" for o in config.get("grade", {}).values()],
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
        outcomes=config.get("grade", {}),
        key_domains=config["risk_of_bias"]["key_domains"],
        measure_note=config.get("grade_note"),
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
