"""Render the manuscript (a .qmd) to HTML, DOCX and PDF.

Two engines read the same sources (the .qmd, ``_quarto.yml``, ``references.bib``, the CSL file
and the Lua filters):

* ``pandoc`` -- pandoc from pypandoc-binary, the filters ``numbers.lua`` + ``crossref.lua`` and
  ``--citeproc``; the PDF is made by ``pandoc -t typst`` and the typst Python package (fonts
  embedded in typst, host fonts ignored).  Needs no Quarto.
* ``quarto`` -- ``quarto render`` with the same ``_quarto.yml`` (used when Quarto is installed).

``_quarto.yml`` is the one source of truth for ``bibliography``, ``csl`` and ``filters``;
front matter of the .qmd may override them.  Outputs are written atomically (temporary file +
``os.replace``): a failed render raises :class:`RenderError` naming the file and leaves no
partial output.  Outputs are deterministic for a fixed ``SOURCE_DATE_EPOCH`` (default
:data:`DEFAULT_EPOCH`).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_write, move_into_place, temporary_prefix

__all__ = ["RenderError", "render_document", "project_config", "DEFAULT_EPOCH", "FORMATS"]

#: used when SOURCE_DATE_EPOCH is not set (2019-07-01, the paper's issue), so builds repeat
DEFAULT_EPOCH = 1561939200
#: output format -> file extension
FORMATS = {"html": "html", "docx": "docx", "pdf": "pdf"}
#: pandoc's default filters when _quarto.yml names none
DEFAULT_FILTERS = ("filters/numbers.lua", "filters/crossref.lua")
TYPST_TEMPLATE = "typst/template.typ"
HTML_CSS = "css/paper.css"
FONT_DIRS = ("fonts",)


class RenderError(RuntimeError):
    """A document could not be rendered (the message names the file and the tool's error)."""


# --------------------------------------------------------------------------- configuration
def _front_matter(qmd: Path) -> dict[str, Any]:
    text = qmd.read_text(encoding="utf-8")
    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*\r?\n", text, re.S)
    if not m:
        return {}
    try:
        data = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # +1: the mark counts from 0 within the front matter, which starts on line 2
        where = f" line {mark.line + 2}" if mark is not None else ""
        raise RenderError(f"{qmd.name}{where}: the YAML front matter does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise RenderError(f"{qmd}: YAML front matter is not a mapping")
    return data


def _find_project(qmd: Path) -> Path | None:
    for d in [qmd.parent, *qmd.parent.parents]:
        if (d / "_quarto.yml").is_file():
            return d
    return None


def project_config(qmd: Path) -> dict[str, Any]:
    """Merged configuration: ``_quarto.yml`` (if any) overridden by the qmd's front matter.

    Returns a dict with absolute ``bibliography`` (list), ``csl`` (or None), ``filters``
    (list of Paths), ``project_dir`` and the raw ``metadata``.
    """
    qmd = Path(qmd).resolve()
    project = _find_project(qmd)
    base: dict[str, Any] = {}
    if project is not None:
        base = yaml.safe_load((project / "_quarto.yml").read_text(encoding="utf-8")) or {}
    front = _front_matter(qmd)
    merged = {**base, **front}
    root = project or qmd.parent

    def rel(p: str, origin: Path) -> Path:
        path = Path(p)
        return path if path.is_absolute() else (origin / path).resolve()

    # a key from the front matter is relative to the qmd, from _quarto.yml to the project
    def origin_of(key: str) -> Path:
        return qmd.parent if key in front else root

    bib = merged.get("bibliography") or []
    if isinstance(bib, str):
        bib = [bib]
    csl = merged.get("csl")
    filters: list[Path] = []
    for f in merged.get("filters") or DEFAULT_FILTERS:
        path = f.get("path") if isinstance(f, Mapping) else f
        if path in (None, "quarto"):
            continue
        filters.append(rel(str(path), origin_of("filters")))
    return {
        "project_dir": root,
        "bibliography": [rel(b, origin_of("bibliography")) for b in bib],
        "csl": rel(csl, origin_of("csl")) if csl else None,
        "filters": filters,
        "metadata": merged,
    }


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if value:
        try:
            return int(value)
        except ValueError as exc:
            raise RenderError(f"SOURCE_DATE_EPOCH={value!r} is not an integer") from exc
    return DEFAULT_EPOCH


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = str(_epoch())
    return env


# --------------------------------------------------------------------------- pandoc engine
# pypandoc's first lookup tries each candidate pandoc in turn and sets its global path to each
# better one it finds; a second thread calling it meanwhile can be handed a candidate it was
# about to replace (here: Debian's pandoc 2.17, without the pandoc.json the filters need).
_PANDOC_LOOKUP = threading.Lock()


def _pandoc_path() -> str:
    with _PANDOC_LOOKUP:
        return _pandoc_lookup()


def _pandoc_lookup() -> str:
    try:
        import pypandoc
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RenderError("pypandoc-binary is not installed (needed for the pandoc engine)") from exc
    # The pandoc that pypandoc-binary ships, pinned in requirements.txt, so that every machine
    # renders with the same version; pypandoc itself would take any newer pandoc on PATH.
    bundled = Path(pypandoc.__file__).parent / "files" / "pandoc"
    if bundled.is_file() and os.access(bundled, os.X_OK) and not os.environ.get("PYPANDOC_PANDOC"):
        return str(bundled)
    return pypandoc.get_pandoc_path()


def _pandoc(
    qmd: Path, to: str, args: Iterable[str], cfg: dict[str, Any], numbers_file: Path | None, output: Path | None
) -> bytes:
    # paths relative to the document's folder (pandoc runs there): pandoc records some of them
    # in its outputs (e.g. the bibliography in DOCX docProps/custom.xml), and an absolute path
    # would make two builds in different folders differ
    def here(path: Path | str) -> str:
        return os.path.relpath(Path(path).resolve(), qmd.parent.resolve())

    # --fail-if-warnings: a citation key missing from the bibliography is only a warning to
    # pandoc (it prints the key with a "?"); here it fails the render like any other error.
    cmd = [_pandoc_path(), str(qmd.name), "--from", "markdown", "--to", to, "--standalone", "--fail-if-warnings"]
    if numbers_file is not None:
        cmd += ["--metadata", f"numbers-file={here(numbers_file)}"]
    for f in cfg["filters"]:
        cmd += ["--lua-filter", here(f)]
    cmd += ["--citeproc"]  # after the filters: crossref.lua must see @fig-/@tbl- first
    for b in cfg["bibliography"]:
        cmd += ["--bibliography", here(b)]
    if cfg["csl"] is not None:
        cmd += ["--csl", here(cfg["csl"])]
    cmd += list(args)
    if output is not None:
        cmd += ["--output", str(output)]
    proc = subprocess.run(cmd, cwd=qmd.parent, capture_output=True, env=_env())
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise RenderError(
            f"pandoc failed to render {qmd} to {to} (exit {proc.returncode}):\n{stderr}"
            + _cited_at(qmd, stderr, cfg["bibliography"])
        )
    return proc.stdout


def _cited_at(qmd: Path, stderr: str, bibliographies: Iterable[str | Path]) -> str:
    """Where the document cites each key that pandoc reports as missing (pandoc names the
    key, not the line)."""
    lines = qmd.read_text(encoding="utf-8").splitlines()
    notes = []
    for key in dict.fromkeys(re.findall(r"citation (\S+) not found", stderr)):
        cite = re.compile(r"@" + re.escape(key) + r"(?![\w:.#$%&+?<>~/-])")
        where = [str(i) for i, line in enumerate(lines, start=1) if cite.search(line)]
        notes.append(
            f"\n{qmd.name} line(s) {', '.join(where) or '?'}: citation @{key} is not in the bibliography "
            f"({', '.join(Path(b).name for b in bibliographies)})"
        )
    return "".join(notes)


def _pandoc_to_file(qmd: Path, to: str, args: list[str], cfg, numbers_file, target: Path) -> None:
    """Run pandoc into a temporary folder beside ``target``, then move the file into place
    (a reader never sees a half-written document)."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=temporary_prefix(target), suffix=".tmp") as tmp:
        out = Path(tmp) / target.name
        _pandoc(qmd, to, args, cfg, numbers_file, out)
        move_into_place(out, target)


def _pandoc_html(qmd: Path, target: Path, cfg, numbers_file) -> None:
    args = ["--embed-resources", "--mathml", "--section-divs"]
    css = cfg["project_dir"] / HTML_CSS
    if css.is_file():
        args += ["--css", str(css)]
    _pandoc_to_file(qmd, "html5", args, cfg, numbers_file, target)


def _pandoc_docx(qmd: Path, target: Path, cfg, numbers_file) -> None:
    args: list[str] = []
    ref = cfg["project_dir"] / "docx" / "reference.docx"
    if ref.is_file():
        args += ["--reference-doc", str(ref)]
    _pandoc_to_file(qmd, "docx", args, cfg, numbers_file, target)


_TYPST_PATH = re.compile(r'(image\()"([^"]+)"')


def _typst_source(qmd: Path, cfg, numbers_file) -> tuple[str, Path]:
    """Typst source whose file paths are root-absolute, and that root."""
    args: list[str] = []
    tpl = cfg["project_dir"] / TYPST_TEMPLATE
    if tpl.is_file():
        args += ["--template", str(tpl)]
    source = _pandoc(qmd, "typst", args, cfg, numbers_file, None).decode("utf-8")
    paths = []
    for m in _TYPST_PATH.finditer(source):
        p = m.group(2)
        if not re.match(r"^[a-z]+:", p):
            paths.append((qmd.parent / p).resolve())
    root = Path(os.path.commonpath([qmd.parent.resolve(), *[p.parent for p in paths]]))

    def fix(m: re.Match) -> str:
        p = m.group(2)
        if re.match(r"^[a-z]+:", p):
            return m.group(0)
        abs_p = (qmd.parent / p).resolve()
        return f'{m.group(1)}"/{abs_p.relative_to(root).as_posix()}"'

    return _TYPST_PATH.sub(fix, source), root


def _pandoc_pdf(qmd: Path, target: Path, cfg, numbers_file) -> None:
    import typst

    source, root = _typst_source(qmd, cfg, numbers_file)
    fonts = [str(cfg["project_dir"] / d) for d in FONT_DIRS if (cfg["project_dir"] / d).is_dir()]
    try:
        pdf = typst.compile(
            source.encode("utf-8"),
            root=str(root),
            font_paths=fonts,
            ignore_system_fonts=True,
            timestamp=_epoch(),
        )
    except Exception as exc:  # typst.TypstError and friends
        raise RenderError(f"typst failed to compile the PDF for {qmd} -> {target}:\n{exc}") from exc
    atomic_write(target, lambda handle: handle.write(pdf))


def typst_source(qmd: Path, numbers_file: Path | None = None) -> str:
    """The Typst source the pandoc engine compiles (for debugging the layout)."""
    qmd = Path(qmd).resolve()
    return _typst_source(qmd, project_config(qmd), numbers_file)[0]


_PANDOC_WRITERS = {"html": _pandoc_html, "docx": _pandoc_docx, "pdf": _pandoc_pdf}


# --------------------------------------------------------------------------- quarto engine
_QUARTO_TO = {"html": "html", "docx": "docx", "pdf": "typst"}


def _quarto_render(qmd: Path, fmt: str, target: Path, numbers_file: Path | None) -> None:
    quarto = shutil.which("quarto")
    if quarto is None:
        raise RenderError("Quarto is not installed (engine='quarto')")
    with tempfile.TemporaryDirectory(prefix=temporary_prefix(target), suffix=".tmp", dir=target.parent) as tmp:
        cmd = [quarto, "render", qmd.name, "--to", _QUARTO_TO[fmt], "--output-dir", tmp]
        if numbers_file is not None:
            cmd += ["-M", f"numbers-file:{Path(numbers_file).resolve()}"]
        proc = subprocess.run(cmd, cwd=qmd.parent, capture_output=True, env=_env())
        produced = Path(tmp) / f"{qmd.stem}.{FORMATS[fmt]}"
        if proc.returncode != 0 or not produced.is_file():
            raise RenderError(
                f"quarto failed to render {qmd} to {fmt} (exit {proc.returncode}):\n"
                + proc.stderr.decode("utf-8", "replace").strip()
            )
        move_into_place(produced, target)


# --------------------------------------------------------------------------- entry point
def render_document(
    qmd: Path,
    outdir: Path,
    formats: Iterable[str] = ("html", "docx", "pdf"),
    numbers_file: Path | None = None,
    *,
    engine: str = "auto",
) -> dict[str, Path]:
    """Render ``qmd`` into ``outdir`` as ``<stem>.html/.docx/.pdf``; returns format -> path.

    ``numbers_file`` is the registry (results/numbers.json); None lets the document's
    ``numbers-file`` metadata (default ``../results/numbers.json``) decide.
    ``engine``: "pandoc", "quarto", or "auto" (Quarto when on PATH, else pandoc).
    """
    qmd = Path(qmd).resolve()
    outdir = Path(outdir).resolve()
    if not qmd.is_file():
        raise RenderError(f"no such document: {qmd}")
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RenderError(f"unknown output format(s) {unknown}; choose from {sorted(FORMATS)}")
    if engine == "auto":
        engine = "quarto" if shutil.which("quarto") else "pandoc"
    if engine not in ("pandoc", "quarto"):
        raise RenderError(f"unknown engine {engine!r}; choose 'auto', 'pandoc' or 'quarto'")
    if numbers_file is not None and not Path(numbers_file).is_file():
        raise RenderError(f"number registry not found: {numbers_file}")
    outdir.mkdir(parents=True, exist_ok=True)
    cfg = project_config(qmd)
    outputs = {fmt: outdir / f"{qmd.stem}.{FORMATS[fmt]}" for fmt in formats}
    if engine == "quarto":
        # one at a time: Quarto writes intermediate files beside the .qmd
        for fmt, target in outputs.items():
            _quarto_render(qmd, fmt, target, numbers_file)
        return outputs
    # The pandoc runs of the formats are independent processes (each writes through its own
    # temporary file), so they run side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(outputs) or 1) as pool:
        futures = [pool.submit(_PANDOC_WRITERS[fmt], qmd, target, cfg, numbers_file) for fmt, target in outputs.items()]
    for future in futures:
        future.result()  # the first failure, in the order of `formats`
    return outputs


def main(argv: list[str] | None = None) -> int:
    """``python -m metabuild.render paper.qmd outdir [--numbers f] [--to html,docx,pdf]``"""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("qmd", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--numbers", type=Path, default=None)
    ap.add_argument("--to", default="html,docx,pdf")
    ap.add_argument("--engine", default="auto", choices=["auto", "pandoc", "quarto"])
    ap.add_argument("--typst-source", action="store_true", help="print the Typst source and exit")
    a = ap.parse_args(argv)
    if a.typst_source:
        print(typst_source(a.qmd, a.numbers))
        return 0
    for fmt, path in render_document(a.qmd, a.outdir, a.to.split(","), a.numbers, engine=a.engine).items():
        print(f"{fmt}: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
