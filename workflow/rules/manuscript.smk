# The paper and its supplement, from one .qmd each, as HTML, DOCX and PDF.

# The two renderings of one source, by folder: audit (numbers linked to their provenance, with the
# appendix) and submission (what a journal receives).
VARIANT_DIRS = {"audit": "manuscript", "submission": "submission"}
VARIANTS = config["manuscript"].get("variants", ["audit", "submission"])
SUBMISSION = config["manuscript"].get("submission", {})
DOCUMENTS = config["manuscript"]["documents"]
# The audit rendering's companion: every printed number's job, inputs (with hashes), published
# value and data rows, as HTML and PDF; the audit documents' numbers link to it.
PROVENANCE_DOCUMENT = config["manuscript"].get("provenance_document", "provenance")
PROVENANCE_OUTPUTS = (
    expand(f"{RESULTS}/manuscript/{PROVENANCE_DOCUMENT}.{{fmt}}", fmt=["html", "pdf"])
    if PROVENANCE_DOCUMENT and "audit" in VARIANTS
    else []
)
MANUSCRIPT_OUTPUTS = (
    expand(
        f"{RESULTS}/{{folder}}/{{document}}.{{fmt}}",
        folder=[VARIANT_DIRS[v] for v in VARIANTS],
        document=DOCUMENTS,
        fmt=config["manuscript"]["formats"],
    )
    + PROVENANCE_OUTPUTS
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
        # the documents whose figure and table numbers this one prints ({.xref} spans)
        xref_documents=lambda w: ws.xref_documents(f"manuscript/{w.document}.qmd"),
        numbers=f"{RESULTS}/numbers.json",
        claims=f"{RESULTS}/checks/{{document}}.claims.json",
        figures=FIGURES,
        tables=TABLES,
        report=f"{RESULTS}/reports/reproduction_appendix.md",
        differences=f"{RESULTS}/reports/differences.md",
        support=ws.manuscript_support_files(),
        reference_docx=[SUBMISSION["reference_docx"]] if SUBMISSION.get("reference_docx") else [],
        typst_template=lambda w: (
            [SUBMISSION["typst_template"]] if w.folder == "submission" and SUBMISSION.get("typst_template") else []
        ),
        code=library("render", "docx_reference"),
        script=job_script("render_document"),
    output:
        [document_output(fmt) for fmt in config["manuscript"]["formats"]],
        # which engine (and Quarto or pandoc version) rendered the document, with the job's provenance
        provenance=f"{RESULTS}/{{folder}}/{{document}}.render.json",
    params:
        formats=config["manuscript"]["formats"],
        engine=config["manuscript"]["engine"],
        variant=lambda w: {d: v for v, d in VARIANT_DIRS.items()}[w.folder],
        line_numbers=SUBMISSION.get("line_numbers", True),
        landscape=SUBMISSION.get("landscape", []),
        provenance_href=f"{PROVENANCE_DOCUMENT}.html" if PROVENANCE_OUTPUTS else None,
    wildcard_constraints:
        folder="|".join(VARIANT_DIRS.values()),
        document="|".join(DOCUMENTS),
    log:
        f"{RESULTS}/logs/{{folder}}/{{document}}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule provenance_document:
    """The provenance document's body: the numbers the manuscripts print, grouped by the job that
    computed them (its inputs with hashes listed once), with published values and data rows."""
    input:
        numbers=f"{RESULTS}/numbers.json",
        documents=expand("manuscript/{document}.qmd", document=DOCUMENTS),
        # the generated files the documents include, whose spans print numbers too
        tables=TABLES,
        report=f"{RESULTS}/reports/reproduction_appendix.md",
        differences=f"{RESULTS}/reports/differences.md",
        code=library("provenance_document", "escape", "registry"),
        script=job_script("provenance_document"),
    output:
        f"{RESULTS}/reports/provenance.md",
    log:
        f"{RESULTS}/logs/reports/provenance.log",
    run:
        run_job(rule, input, output, params, wildcards, log)


rule render_provenance_document:
    """Render manuscript/provenance.qmd (the provenance of every printed number) as HTML and PDF."""
    input:
        qmd=f"manuscript/{PROVENANCE_DOCUMENT}.qmd",
        numbers=f"{RESULTS}/numbers.json",
        claims=f"{RESULTS}/checks/{PROVENANCE_DOCUMENT}.claims.json",
        listing=rules.provenance_document.output,
        support=ws.manuscript_support_files(),
        reference_docx=[],
        typst_template=[],
        code=library("render"),
        script=job_script("render_document"),
    output:
        html=report(
            f"{RESULTS}/manuscript/{PROVENANCE_DOCUMENT}.html",
            caption="../report/provenance.rst",
            category="Documents",
            subcategory="Audit rendering",
            labels={"document": PROVENANCE_DOCUMENT, "format": "HTML"},
        ),
        pdf=report(
            f"{RESULTS}/manuscript/{PROVENANCE_DOCUMENT}.pdf",
            caption="../report/provenance.rst",
            category="Documents",
            subcategory="Audit rendering",
            labels={"document": PROVENANCE_DOCUMENT, "format": "PDF"},
        ),
        provenance=f"{RESULTS}/manuscript/{PROVENANCE_DOCUMENT}.render.json",
    params:
        formats=["html", "pdf"],
        engine=config["manuscript"]["engine"],
        variant="audit",
        line_numbers=False,
        landscape=[],
        provenance_href=None,
    log:
        f"{RESULTS}/logs/manuscript/{PROVENANCE_DOCUMENT}.log",
    run:
        run_job(rule, input, output, params, wildcards, log)
