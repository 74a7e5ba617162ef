# Figures: each its own job, drawn from analysis results (or data) as SVG + 300-dpi PNG.

FIGURE_STEMS = {spec["figure"]: name for name, spec in ANALYSES.items() if spec.get("figure")}
# the analysis whose leave-one-out the sensitivity figure shows (the first with leave_one_out: true)
LEAVE_ONE_OUT = next((name for name, spec in ANALYSES.items() if spec.get("leave_one_out")), None)
FIGURES = expand(
    f"{RESULTS}/figures/{{stem}}.{{ext}}",
    stem=[
        *FIGURE_STEMS,
        *(["flow"] if "study_flow.csv" in PRESENT_DATA else []),
        "risk_of_bias",
        *(["leave_one_out"] if LEAVE_ONE_OUT else []),
    ],
    ext=["svg", "png"],
)


rule forest_plot:
    """Forest plot of one analysis (per-study effects, weights, pooled diamond(s))."""
    input:
        result=lambda w: f"{RESULTS}/analyses/{FIGURE_STEMS[w.stem]}.json",
        code=library("figures/forest", "figures/common"),
        script=job_script("forest_plot"),
    output:
        svg=report(
            f"{RESULTS}/figures/{{stem}}.svg",
            caption="../report/forest_plot.rst",
            category="Figures",
            subcategory="Forest plots",
            labels=lambda w: {"figure": w.stem, "analysis": FIGURE_STEMS[w.stem]},
        ),
        png=f"{RESULTS}/figures/{{stem}}.png",
    params:
        max_table_studies=config["figures"]["forest_max_table_studies"],
    wildcard_constraints:
        stem="|".join(FIGURE_STEMS),
    log:
        f"{RESULTS}/logs/figures/{{stem}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule leave_one_out_plot:
    """Sensitivity analysis: the pooled estimate of the analysis with leave_one_out: true, each trial left out."""
    input:
        result=f"{RESULTS}/analyses/{LEAVE_ONE_OUT}.json",
        code=library("figures/forest", "figures/common", "review"),
        script=job_script("leave_one_out_plot"),
    output:
        svg=report(
            f"{RESULTS}/figures/leave_one_out.svg",
            caption="../report/leave_one_out.rst",
            category="Figures",
            subcategory="Sensitivity",
            labels={"figure": "leave_one_out"},
        ),
        png=f"{RESULTS}/figures/leave_one_out.png",
    log:
        f"{RESULTS}/logs/figures/leave_one_out.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule risk_of_bias_plot:
    """Traffic-light grid of the Cochrane risk-of-bias judgements (overall derived)."""
    input:
        studies=ancient(data_file("studies.csv")),
        risk_of_bias=ancient(data_file("risk_of_bias.csv")),
        code=library("figures/rob", "figures/common", "describe"),
        script=job_script("risk_of_bias_plot"),
    output:
        svg=report(
            f"{RESULTS}/figures/risk_of_bias.svg",
            caption="../report/risk_of_bias.rst",
            category="Figures",
            subcategory="Risk of bias",
            labels={"figure": "risk_of_bias"},
        ),
        png=f"{RESULTS}/figures/risk_of_bias.png",
    params:
        domains=config["risk_of_bias"]["domains"],
        key_domains=config["risk_of_bias"]["key_domains"],
        digest=PLAN.jobs["risk_of_bias_plot"],
    log:
        f"{RESULTS}/logs/figures/risk_of_bias.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule flow_diagram:
    """PRISMA study-selection flow diagram from the stage counts."""
    input:
        flow=f"{RESULTS}/descriptive/flow.json",
        code=library("figures/flow", "figures/common"),
        script=job_script("flow_diagram"),
    output:
        svg=report(
            f"{RESULTS}/figures/flow.svg",
            caption="../report/flow.rst",
            category="Figures",
            subcategory="Study selection",
            labels={"figure": "flow"},
        ),
        png=f"{RESULTS}/figures/flow.png",
    log:
        f"{RESULTS}/logs/figures/flow.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
