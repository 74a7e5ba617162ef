# The number registry: every number the manuscript shows, with its provenance and the
# value the paper printed; and the reproduction report (reproduced beside published).

NUMBER_SOURCES = [
    *expand(f"{RESULTS}/analyses/{{analysis}}.json", analysis=ANALYSES),
    *expand(f"{RESULTS}/descriptive/{{topic}}.json", topic=ws.DESCRIPTIVE_INPUTS),
    f"{RESULTS}/descriptive/grade.json",
]


rule number_registry:
    """Gather every reported number into results/numbers.json (value, text, provenance)."""
    input:
        sources=NUMBER_SOURCES,
        published=data_file("published_values.csv"),
        code=library("registry", "formatting", "provenance"),
    output:
        numbers=f"{RESULTS}/numbers.json",
        prov=f"{RESULTS}/numbers.prov.json",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/number_registry.log",
    script:
        "../scripts/number_registry.py"


rule reproduction_report:
    """Every published value beside the reproduced one, with the reason for each mismatch."""
    input:
        numbers=f"{RESULTS}/numbers.json",
        published=data_file("published_values.csv"),
        code=library("report", "stats/consistency", "formatting"),
    output:
        md=f"{RESULTS}/reports/reproduction.md",
        html=f"{RESULTS}/reports/reproduction.html",
        json=f"{RESULTS}/reports/reproduction.json",
    params:
        gate=config["consistency_gate"],
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/reproduction_report.log",
    script:
        "../scripts/reproduction_report.py"
