# The paper and its supplement, from one .qmd each, as HTML, DOCX and PDF.

# The two renderings of one source, by folder: audit (numbers linked to their provenance, with the
# appendix) and submission (what a journal receives).
VARIANT_DIRS = {"audit": "manuscript", "submission": "submission"}
VARIANTS = config["manuscript"].get("variants", ["audit", "submission"])
SUBMISSION = config["manuscript"].get("submission", {})
MANUSCRIPT_OUTPUTS = expand(
    f"{RESULTS}/{{folder}}/{{document}}.{{fmt}}",
    folder=[VARIANT_DIRS[v] for v in VARIANTS],
    document=config["manuscript"]["documents"],
    fmt=config["manuscript"]["formats"],
)


rule check_claims:
    """Check the manuscript's claims ([words]{.claim if="..."}) and spans against the registry."""
    input:
        qmd="manuscript/{document}.qmd",
        numbers=f"{RESULTS}/numbers.json",
        code=library("claims", "registry"),
        script=job_script("check_claims"),
    output:
        f"{RESULTS}/checks/{{document}}.claims.json",
    log:
        f"{RESULTS}/logs/checks/{{document}}.claims.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule render_document:
    """Render manuscript/{document}.qmd (audit or submission rendering, by folder) with Quarto if
    installed, else pandoc + Typst."""
    input:
        qmd="manuscript/{document}.qmd",
        numbers=f"{RESULTS}/numbers.json",
        claims=f"{RESULTS}/checks/{{document}}.claims.json",
        figures=FIGURES,
        tables=TABLES,
        report=f"{RESULTS}/reports/reproduction_appendix.md",
        differences=f"{RESULTS}/reports/differences.md",
        support=ws.manuscript_support_files(),
        reference_docx=[SUBMISSION["reference_docx"]] if SUBMISSION.get("reference_docx") else [],
        code=library("render", "docx_reference"),
        script=job_script("render_document"),
    output:
        expand(f"{RESULTS}/{{{{folder}}}}/{{{{document}}}}.{{fmt}}", fmt=config["manuscript"]["formats"]),
        # which engine (and Quarto or pandoc version) rendered the document, with the job's provenance
        provenance=f"{RESULTS}/{{folder}}/{{document}}.render.json",
    params:
        formats=config["manuscript"]["formats"],
        engine=config["manuscript"]["engine"],
        variant=lambda w: {d: v for v, d in VARIANT_DIRS.items()}[w.folder],
        line_numbers=SUBMISSION.get("line_numbers", True),
    wildcard_constraints:
        folder="|".join(VARIANT_DIRS.values()),
    log:
        f"{RESULTS}/logs/{{folder}}/{{document}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
