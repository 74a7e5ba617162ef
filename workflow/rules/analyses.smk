# One job per configured analysis, plus the descriptive numbers of the paper.


rule validate_data:
    """Record the validation of data/ (it already ran before the DAG was built)."""
    input:
        ws.data_files(DATA_DIR),
        schemas=ws.schema_files(DATA_DIR),
        script=job_script("validate_data"),
    output:
        f"{RESULTS}/validation/report.json",
    log:
        f"{RESULTS}/logs/validate_data.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule run_analysis:
    """Pool one analysis of config/config.yaml (its studies, outcome, measure, moderator)."""
    input:
        # ancient(): a data file is shared by many analyses; each job reruns when the
        # digest of the cells it reads (params.digest) changes, not when the file is touched.
        studies=ancient(data_file("studies.csv")),
        outcomes=lambda w: ancient(data_file(ws.outcome_file(ANALYSES[w.analysis], config))),
        # read when an analysis filters or groups on a risk-of-bias judgement (the digest says which)
        risk_of_bias=[ancient(data_file("risk_of_bias.csv"))] if "risk_of_bias.csv" in PRESENT_DATA else [],
        code=library("analysis", "review", "stats/effects", "stats/pooling", "stats/metareg", "stats/bias",
                     "stats/proportions", "data", "registry"),
        review_code=REVIEW_CODE,
        script=job_script("run_analysis"),
    output:
        f"{RESULTS}/analyses/{{analysis}}.json",
    params:
        spec=lambda w: ANALYSES[w.analysis],
        digest=lambda w: DIGESTS[w.analysis],
    log:
        f"{RESULTS}/logs/analyses/{{analysis}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule describe:
    """Descriptive numbers of one topic (studies, flow, regimen, sample size, protocol)."""
    input:
        data=lambda w: [ancient(data_file(f)) for f in DESCRIPTIVE[w.topic]],
        code=library("describe", "analysis", "review", "registry", "stats/power", "data"),
        review_code=REVIEW_CODE,
        script=job_script("describe"),
    output:
        f"{RESULTS}/descriptive/{{topic}}.json",
    params:
        settings=lambda w: ws.descriptive_settings(w.topic, config),
        digest=lambda w: PLAN.descriptive[w.topic],
    wildcard_constraints:
        topic="|".join(DESCRIPTIVE),
    log:
        f"{RESULTS}/logs/descriptive/{{topic}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
