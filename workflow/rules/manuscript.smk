# The paper and its supplement, from one .qmd each, as HTML, DOCX and PDF.

MANUSCRIPT_OUTPUTS = expand(
    f"{RESULTS}/manuscript/{{document}}.{{fmt}}",
    document=config["manuscript"]["documents"],
    fmt=config["manuscript"]["formats"],
)


rule check_claims:
    """Check the manuscript's claims ([words]{.claim if="..."}) and spans against the registry."""
    input:
        qmd="manuscript/{document}.qmd",
        numbers=f"{RESULTS}/numbers.json",
        code=library("claims"),
        script=job_script("check_claims"),
    output:
        f"{RESULTS}/checks/{{document}}.claims.json",
    log:
        f"{RESULTS}/logs/checks/{{document}}.claims.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule render_document:
    """Render manuscript/{document}.qmd with Quarto if installed, else pandoc + Typst."""
    input:
        qmd="manuscript/{document}.qmd",
        numbers=f"{RESULTS}/numbers.json",
        claims=f"{RESULTS}/checks/{{document}}.claims.json",
        figures=FIGURES,
        tables=TABLES,
        report=f"{RESULTS}/reports/reproduction_appendix.md",
        support=ws.manuscript_support_files(),
        code=library("render"),
        script=job_script("render_document"),
    output:
        expand(f"{RESULTS}/manuscript/{{{{document}}}}.{{fmt}}", fmt=config["manuscript"]["formats"]),
        # which engine (and Quarto or pandoc version) rendered the document, with the job's provenance
        provenance=f"{RESULTS}/manuscript/{{document}}.render.json",
    params:
        formats=config["manuscript"]["formats"],
        engine=config["manuscript"]["engine"],
    log:
        f"{RESULTS}/logs/manuscript/{{document}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
