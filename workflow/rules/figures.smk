# Figures: each its own job, drawn from analysis results (or data) as SVG + 300-dpi PNG.

FIGURE_STEMS = {spec["figure"]: name for name, spec in ANALYSES.items() if spec.get("figure")}
FIGURES = expand(
    f"{RESULTS}/figures/{{stem}}.{{ext}}",
    stem=[*FIGURE_STEMS, "flow", "risk_of_bias", "leave_one_out"],
    ext=["svg", "png"],
)


rule forest_plot:
    """Forest plot of one analysis (per-study effects, weights, pooled diamond(s))."""
    input:
        result=lambda w: f"{RESULTS}/analyses/{FIGURE_STEMS[w.stem]}.json",
        code=library("figures/forest", "figures/common"),
    output:
        svg=f"{RESULTS}/figures/{{stem}}.svg",
        png=f"{RESULTS}/figures/{{stem}}.png",
    wildcard_constraints:
        stem="|".join(FIGURE_STEMS),
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures/{{stem}}.log",
    script:
        "../scripts/forest_plot.py"


rule leave_one_out_plot:
    """Sensitivity analysis: the primary pooled estimate with each trial left out."""
    input:
        result=f"{RESULTS}/analyses/primary.json",
        code=library("figures/forest", "figures/common"),
    output:
        svg=f"{RESULTS}/figures/leave_one_out.svg",
        png=f"{RESULTS}/figures/leave_one_out.png",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures/leave_one_out.log",
    script:
        "../scripts/leave_one_out_plot.py"


rule risk_of_bias_plot:
    """Traffic-light grid of the Cochrane risk-of-bias judgements (overall derived)."""
    input:
        studies=ancient(data_file("studies.csv")),
        risk_of_bias=ancient(data_file("risk_of_bias.csv")),
        code=library("figures/rob", "figures/common", "describe"),
    output:
        svg=f"{RESULTS}/figures/risk_of_bias.svg",
        png=f"{RESULTS}/figures/risk_of_bias.png",
    params:
        domains=config["risk_of_bias"]["domains"],
        key_domains=config["risk_of_bias"]["key_domains"],
        digest=ws.cells_digest(DATA, ws.JOB_INPUTS["risk_of_bias_plot"]),
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures/risk_of_bias.log",
    script:
        "../scripts/risk_of_bias_plot.py"


rule flow_diagram:
    """PRISMA study-selection flow diagram from the stage counts."""
    input:
        flow=f"{RESULTS}/descriptive/flow.json",
        code=library("figures/flow", "figures/common"),
    output:
        svg=f"{RESULTS}/figures/flow.svg",
        png=f"{RESULTS}/figures/flow.png",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures/flow.log",
    script:
        "../scripts/flow_diagram.py"
