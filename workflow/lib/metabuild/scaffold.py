"""``python -m metabuild new DIR``: start a review of your own.

Writes ``DIR`` with data templates (header rows) and their schemas, a configuration, a
manuscript skeleton whose numbers are registry keys, and a README with the two commands. The
rendering support (Lua filters, citation style, Typst template, CSS, ``_quarto.yml``, the
provenance document ``provenance.qmd``) is copied
from this repository's ``manuscript/`` so the folder is self-contained: a copy of it elsewhere
builds the same way. Build it from the repository's root with
``snakemake --cores 2 --directory DIR``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HELP = "start a new review in DIR (data templates, config, manuscript skeleton)"

#: the repository (its flagship manuscript supplies the rendering support files)
REPOSITORY = Path(__file__).resolve().parents[3]
TEMPLATE = Path(__file__).resolve().parent / "templates" / "review"
#: rendering support copied from the repository's manuscript/ (the review's own text is the template's)
SUPPORT = ("_quarto.yml", "filters/*.lua", "csl/*.csl", "typst/*.typ", "css/*.css", "provenance.qmd")


class ScaffoldError(ValueError):
    """DIR cannot be used (it exists and is not empty)."""


def new_review(directory: str | Path, repository: Path = REPOSITORY) -> list[Path]:
    """Create the review folder ``directory``; returns the files written (relative paths)."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not an empty folder; choose a new one")
    written = []
    for source in sorted(TEMPLATE.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            rel = source.relative_to(TEMPLATE)
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / rel)
            written.append(rel)
    manuscript = repository / "manuscript"
    for pattern in SUPPORT:
        for source in sorted(manuscript.glob(pattern)):
            rel = Path("manuscript") / source.relative_to(manuscript)
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / rel)
            written.append(rel)
    readme = target / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("DIR", str(directory)), encoding="utf-8")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="the new review's folder (must not exist, or be empty)")


def run(args: argparse.Namespace) -> int:
    try:
        written = new_review(args.directory)
    except ScaffoldError as error:
        print(f"error: {error}")
        return 2
    print(f"wrote {len(written)} files to {args.directory}/:")
    for rel in written:
        print(f"  {rel}")
    print(
        "\nNext: fill data/*.csv (one row per trial, events and totals per arm, risk of bias), then\n"
        f"  snakemake --cores 2 --directory {args.directory}\n"
        f"The paper lands in {args.directory}/results/manuscript/ (HTML, DOCX, PDF)."
    )
    return 0
