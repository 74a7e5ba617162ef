"""Render the manuscript (a .qmd) to HTML, DOCX and PDF.

Two engines read the same sources (the .qmd, ``_quarto.yml``, ``references.bib``, the CSL file
and the Lua filters):

* ``pandoc`` -- pandoc from pypandoc-binary, the filters ``numbers.lua`` + ``crossref.lua`` and
  ``--citeproc``; the PDF is made by ``pandoc -t typst`` and the typst Python package (fonts
  embedded in typst, host fonts ignored).  Needs no Quarto.
* ``quarto`` -- ``quarto render`` with the same ``_quarto.yml`` (used when Quarto >= 1.6 is
  installed), run on a temporary copy of the document's folder so that Quarto writes nothing
  into ``manuscript/``; for the PDF Quarto writes the Typst source (its template with the
  project's partials ``typst/typst-template.typ`` and ``typst/typst-show.typ``) and the
  project's Typst compiles it as on the pandoc path.

``_quarto.yml`` is the one source of truth for ``bibliography``, ``csl`` and ``filters``;
front matter of the .qmd may override them.  Outputs are written atomically (temporary file +
``os.replace``): a failed render raises :class:`RenderError` naming the file and leaves no
partial output.  Outputs are deterministic for a fixed ``SOURCE_DATE_EPOCH`` (default
:data:`DEFAULT_EPOCH`).

The registry (``numbers_file``) is read once per document here, not by the filter in each pandoc
run: :func:`registry_subset` writes the numbers the document can cite to a temporary file that
``numbers.lua`` reads instead (metadata ``numbers-subset``), falling back to the whole registry for
a key the subset lacks. Decoding a large review's registry (7 MB at 1,000 studies x 100 analyses)
cost each pandoc more than the rest of the filter.
"""

from __future__ import annotations

import concurrent.futures
import json
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

__all__ = [
    "RenderError",
    "render_document",
    "project_config",
    "engine_info",
    "quarto_version",
    "DEFAULT_EPOCH",
    "FORMATS",
    "QUARTO_MIN_VERSION",
]

#: used when SOURCE_DATE_EPOCH is not set (2019-07-01, the paper's issue), so builds repeat
DEFAULT_EPOCH = 1561939200
#: output format -> file extension
FORMATS = {"html": "html", "docx": "docx", "pdf": "pdf"}
#: pandoc's default filters when _quarto.yml names none
DEFAULT_FILTERS = ("filters/numbers.lua", "filters/crossref.lua")
TYPST_TEMPLATE = "typst/template.typ"
HTML_CSS = "css/paper.css"
FONT_DIRS = ("fonts",)
#: the oldest Quarto release whose source these sources were checked against (1.6 to 1.10): what
#: they rely on (quarto.doc.input_file, `at: pre-ast`/`post-render` filters, the Typst partials
#: typst-template.typ and typst-show.typ, `output-ext`, the call to quarto_super) is there in 1.6.
QUARTO_MIN_VERSION = (1, 6)


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


# --------------------------------------------------------------------------- the registry's subset
# every run of the characters a registry key is made of: a span [key]{.num} holds one such run
_KEY_TOKEN = re.compile(r"[A-Za-z0-9_.\-]+")
# the file= attribute of an .include Div, quoted or not (numbers.lua reads the attribute)
_INCLUDE_FILE = re.compile(r"""\bfile=(?:"([^"]*)"|'([^']*)'|([^\s}]+))""")
#: the schema of the registry whose subset is written (any other shape: the filter reads it whole)
_SUBSET_SCHEMA = "metabuild-numbers/2"
#: the fields of an activity the subset keeps: those numbers.lua prints in a tooltip or comment
#: (the data rows and study ids, most of a large review's activities, are the provenance
#: document's); the subset names them, and the filter reads the whole registry for any other
SUBSET_ACTIVITY_FIELDS = ("inputs", "rule", "script")


def registry_subset(registry: Mapping[str, Any], texts: Iterable[str]) -> dict[str, Any] | None:
    """The part of ``registry`` (``results/numbers.json`` as stored, schema 2) that ``texts`` (a
    document and the files it includes) can cite: each number whose key appears in them as a run
    of key characters, the ``trial.<id>`` entries of the trials its list names (``.cite`` and
    ``.trials`` spans), and the activities of those numbers. A superset of what the filter looks
    up, except for a key written with escapes (``a\\_b``); the filter falls back to the whole
    registry for a key the subset lacks. Activities keep :data:`SUBSET_ACTIVITY_FIELDS`, which
    the subset lists. None for a registry of another shape."""
    if not isinstance(registry, Mapping) or registry.get("schema") != _SUBSET_SCHEMA:
        return None
    numbers, activities = registry.get("numbers"), registry.get("activities")
    if not isinstance(numbers, Mapping) or not isinstance(activities, Mapping):
        return None
    # a backslash (markdown's escape) is dropped first, so "a\\_b" reads as the key "a_b"
    keys = {t for text in texts for t in _KEY_TOKEN.findall(text.replace("\\", "")) if t in numbers}
    for key in list(keys):
        value = numbers[key].get("value") if isinstance(numbers[key], Mapping) else None
        if isinstance(value, list):
            keys.update(f"trial.{v}" for v in value if isinstance(v, str) and f"trial.{v}" in numbers)
    chosen = {k: numbers[k] for k in sorted(keys)}
    used = {e.get("activity") for e in chosen.values() if isinstance(e, Mapping)}
    return {
        "schema": registry["schema"],
        "activity_fields": list(SUBSET_ACTIVITY_FIELDS),
        "activities": {
            a: {k: v for k, v in activities[a].items() if k in SUBSET_ACTIVITY_FIELDS}
            if isinstance(activities[a], Mapping)
            else activities[a]
            for a in sorted(used, key=str)
            if a in activities
        },
        "numbers": chosen,
    }


def _document_texts(qmd: Path) -> list[str]:
    """The document's text and that of the files its ``.include`` Divs name (relative to its
    folder, as numbers.lua resolves them), those that can be read."""
    text = qmd.read_text(encoding="utf-8")
    texts = [text]
    for m in _INCLUDE_FILE.finditer(text):
        name = next(g for g in m.groups() if g is not None)
        try:
            texts.append((qmd.parent / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            pass  # numbers.lua names the file in its own error
    return texts


def _write_subset(qmd: Path, numbers_file: Path | None, filters: Iterable[Path], folder: Path) -> Path | None:
    """Write the document's subset of the registry into ``folder``; its path, or None when the
    filter is to read the registry itself (no registry given, one of another shape or unreadable:
    the filter reports that; a numbers.lua of a project made before it read subsets)."""
    if numbers_file is None:
        return None
    numbers_lua = [f for f in filters if Path(f).name == "numbers.lua"]
    try:
        if not numbers_lua or "numbers-subset" not in numbers_lua[0].read_text(encoding="utf-8"):
            return None
        subset = registry_subset(json.loads(Path(numbers_file).read_bytes()), _document_texts(qmd))
    except (OSError, ValueError):
        return None
    if subset is None:
        return None
    path = folder / "numbers.subset.json"
    path.write_text(json.dumps(subset, ensure_ascii=False), encoding="utf-8")
    return path


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
    if cfg.get("numbers_subset") is not None:
        # an absolute path: the filter drops it from the metadata, so no output records it
        cmd += ["--metadata", f"numbers-subset={cfg['numbers_subset']}"]
    for key, value in variant_metadata(cfg):
        cmd += ["--metadata", f"{key}={value}"]
    if cfg.get("metadata", {}).get("link-citations") and cfg.get("variant", "audit") == "audit":
        # _quarto.yml's link-citations, which Quarto reads itself (a reference number links to its
        # entry); the submission rendering has no links, as journals ask
        cmd += ["--metadata", "link-citations=true"]
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


def _pandoc_to_file(qmd: Path, to: str, args: list[str], cfg, numbers_file, target: Path, post=None) -> None:
    """Run pandoc into a temporary folder beside ``target`` (and ``post`` on its output, if
    given), then move the file into place (a reader never sees a half-written document)."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=temporary_prefix(target), suffix=".tmp") as tmp:
        out = Path(tmp) / target.name
        _pandoc(qmd, to, args, cfg, numbers_file, out)
        if post is not None:
            post(out)
        move_into_place(out, target)


def _pandoc_html(qmd: Path, target: Path, cfg, numbers_file) -> None:
    args = ["--embed-resources", "--mathml", "--section-divs"]
    css = cfg["project_dir"] / HTML_CSS
    if css.is_file():
        args += ["--css", str(css)]
    _pandoc_to_file(qmd, "html5", args, cfg, numbers_file, target)


def _pandoc_docx(qmd: Path, target: Path, cfg, numbers_file) -> None:
    args: list[str] = []
    ref = cfg.get("reference_docx") or cfg["project_dir"] / "docx" / "reference.docx"
    if Path(ref).is_file():
        args += ["--reference-doc", str(ref)]
    post = None
    if cfg.get("reference_docx"):
        from metabuild.docx_reference import fit_tables_to_text_width, landscape_blocks, text_width_twips

        width = text_width_twips(Path(cfg["reference_docx"]))
        wide = [
            b for b in cfg.get("landscape") or [] if re.search(rf"\{{#{re.escape(b)}[\s}}]", qmd.read_text("utf-8"))
        ]

        def post(docx: Path) -> None:
            fit_tables_to_text_width(docx, width)
            missing = landscape_blocks(docx, wide)
            if missing:
                raise RenderError(f"{qmd.name}: landscape block(s) {missing} not found in the DOCX")

    _pandoc_to_file(qmd, "docx", args, cfg, numbers_file, target, post)


#: the two renderings of one source: "audit" (every number linked to its provenance in the
#: provenance document) and "submission" (what a journal receives: plain numbers, page and line numbers)
VARIANTS = ("audit", "submission")


def variant_metadata(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """Metadata that selects the rendering in the filters (numbers.lua) and templates (Typst line
    numbers), the same for both engines."""
    variant = cfg.get("variant", "audit")
    pairs = [("metabuild-variant", variant)]
    if variant == "audit" and cfg.get("provenance_href"):
        pairs.append(("provenance-href", cfg["provenance_href"]))
    if variant == "submission":
        pairs.append(("link-citations", "false"))  # Quarto reads _quarto.yml's true itself
        if cfg.get("line_numbers", True):
            pairs.append(("line-numbers", "true"))
    return pairs


_TYPST_PATH = re.compile(r'(image\()"([^"]+)"')


def _rooted(source: str, docdir: Path) -> tuple[str, Path]:
    """``source`` with its image paths (relative to ``docdir``) made root-absolute, and that root:
    the deepest folder holding the document and every image. Typst reads no file outside its
    root; Quarto's own compile puts the root at the project folder (``manuscript/``), so it
    refuses ``../results/figures/*.svg``."""
    paths = []
    for m in _TYPST_PATH.finditer(source):
        p = m.group(2)
        if not re.match(r"^[a-z]+:", p):
            paths.append((docdir / p).resolve())
    root = Path(os.path.commonpath([docdir.resolve(), *[p.parent for p in paths]]))

    def fix(m: re.Match) -> str:
        p = m.group(2)
        if re.match(r"^[a-z]+:", p):
            return m.group(0)
        abs_p = (docdir / p).resolve()
        return f'{m.group(1)}"/{abs_p.relative_to(root).as_posix()}"'

    return _TYPST_PATH.sub(fix, source), root


def _typst_source(qmd: Path, cfg, numbers_file) -> tuple[str, Path]:
    """Typst source whose file paths are root-absolute, and that root."""
    args: list[str] = []
    tpl = Path(cfg.get("typst_template") or cfg["project_dir"] / TYPST_TEMPLATE)
    if cfg.get("typst_template") and not tpl.is_file():
        raise RenderError(f"the Typst template {tpl} does not exist")
    if tpl.is_file():
        args += ["--template", str(tpl)]
    source = _pandoc(qmd, "typst", args, cfg, numbers_file, None).decode("utf-8")
    return _rooted(source, qmd.parent)


def _pandoc_pdf(qmd: Path, target: Path, cfg, numbers_file) -> None:
    source, root = _typst_source(qmd, cfg, numbers_file)
    _compile_pdf(source, root, qmd, target, cfg)


def _compile_pdf(source: str, root: Path, qmd: Path, target: Path, cfg) -> None:
    """Compile Typst ``source`` with the project's Typst (the ``typst`` package): fonts embedded
    in Typst only, the build's timestamp, written atomically to ``target``."""
    import typst

    fonts = [str(cfg["project_dir"] / d) for d in FONT_DIRS if (cfg["project_dir"] / d).is_dir()]

    def compile_pdf(floats: str) -> bytes:
        return typst.compile(
            source.encode("utf-8"),
            root=str(root),
            font_paths=fonts,
            ignore_system_fonts=True,
            timestamp=_epoch(),
            sys_inputs={"metabuild-floats": floats},
        )

    try:
        try:
            pdf = compile_pdf("auto")
        except Exception as exc:
            # Typst 0.15.1 can fail to build a tagged (accessible) PDF when a floating figure
            # moves out of its place in the text ("internal error: parent group", typst-pdf
            # tags/tree/build.rs). Then the figures stay where the text puts them: the same
            # document, with blank space where a figure did not fit, and still tagged.
            if "internal error" not in str(exc):
                raise
            print(f"typst: {str(exc).splitlines()[0]}; setting {qmd.name} without floating figures", flush=True)
            pdf = compile_pdf("none")
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
# what a render leaves in a project folder: never copied into the staged copy
_QUARTO_LEFTOVERS = (".quarto", "_freeze", "*_files", "*.quarto_ipynb")


def quarto_version(quarto: str | None = None) -> tuple[int, ...]:
    """The version of the Quarto on PATH (or at ``quarto``), e.g. ``(1, 6, 40)``."""
    quarto = quarto or shutil.which("quarto")
    if quarto is None:
        raise RenderError("Quarto is not installed (engine='quarto')")
    proc = subprocess.run([quarto, "--version"], capture_output=True, text=True)
    m = re.match(r"\s*(\d+(?:\.\d+)+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise RenderError(f"{quarto} --version did not print a version: {(proc.stdout + proc.stderr).strip()!r}")
    return tuple(int(x) for x in m.group(1).split("."))


def _check_quarto(quarto: str) -> tuple[int, ...]:
    version = quarto_version(quarto)
    if version[:2] < QUARTO_MIN_VERSION:
        raise RenderError(
            f"Quarto {'.'.join(map(str, version))} at {quarto} is older than the oldest supported release "
            f"{'.'.join(map(str, QUARTO_MIN_VERSION))}; update Quarto, or set manuscript.engine: pandoc"
        )
    return version


def _stage(qmd: Path, project: Path, tmp: Path) -> Path:
    """A copy of the document's project folder in ``tmp`` (Quarto writes ``.quarto/``,
    ``.gitignore`` and intermediate files beside the document); the project folder's siblings
    (``results/``, ``data/``) appear beside the copy as links, so the document's ``../`` paths
    resolve as in the original. Returns the copy of ``qmd``."""
    stage = tmp / project.name
    shutil.copytree(project, stage, ignore=shutil.ignore_patterns(*_QUARTO_LEFTOVERS))
    for entry in project.parent.iterdir():
        if entry.name != project.name:
            (tmp / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return stage / qmd.relative_to(project)


def _quarto_run(
    quarto: str, qmd: Path, staged: Path, fmt: str, outdir: Path, numbers_file, extra=(), subset=None
) -> Path:
    cmd = [quarto, "render", staged.name, "--to", _QUARTO_TO[fmt], "--output-dir", str(outdir), *extra]
    if numbers_file is not None:
        cmd += ["-M", f"numbers-file:{Path(numbers_file).resolve()}"]
    if subset is not None:
        cmd += ["-M", f"numbers-subset:{subset}"]
    proc = subprocess.run(cmd, cwd=staged.parent, capture_output=True, env=_env())
    produced = [p for p in outdir.iterdir() if p.is_file() and p.stem == staged.stem]
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or len(produced) != 1:
        raise RenderError(
            f"quarto failed to render {qmd} (a copy in {staged.parent}) to {fmt} (exit {proc.returncode}):\n{stderr}"
        )
    return produced[0]


def _quarto_render(quarto: str, qmd: Path, cfg, fmt: str, target: Path, numbers_file: Path | None) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="metabuild-quarto-") as stage_tmp,
        tempfile.TemporaryDirectory(prefix=temporary_prefix(target), suffix=".tmp", dir=target.parent) as out,
    ):
        staged = _stage(qmd, cfg["project_dir"], Path(stage_tmp))
        variant = [a for key, value in variant_metadata(cfg) for a in ("-M", f"{key}:{value}")]
        if fmt == "docx" and cfg.get("reference_docx"):
            variant += ["-M", f"reference-doc:{Path(cfg['reference_docx']).resolve()}"]
        if fmt != "pdf":
            move_into_place(
                _quarto_run(quarto, qmd, staged, fmt, Path(out), numbers_file, variant, cfg.get("numbers_subset")),
                target,
            )
            return
        # Quarto writes the Typst source only (output-ext: typ); the project's Typst compiles
        # it as on the pandoc path: Quarto would compile with its root at the project folder
        # (which refuses ../results/figures), and with the Typst it bundles (0.11 in 1.6).
        typ = _quarto_run(
            quarto,
            qmd,
            staged,
            fmt,
            Path(out),
            numbers_file,
            ["-M", "output-ext:typ", *variant],
            cfg.get("numbers_subset"),
        )
        # the image paths are relative to the staged document, whose layout is the original's
        source, root = _rooted(typ.read_text(encoding="utf-8"), qmd.parent)
        _compile_pdf(source, root, qmd, target, cfg)


def _auto_engine() -> str:
    """The Quarto engine when a supported Quarto is on PATH, else pandoc (an older Quarto is passed over:
    the log and the render's provenance say which engine rendered)."""
    quarto = shutil.which("quarto")
    if quarto is None:
        return "pandoc"
    try:
        _check_quarto(quarto)
    except RenderError:
        return "pandoc"
    return "quarto"


def engine_info(engine: str = "auto") -> dict[str, str]:
    """The engine ``render_document`` would use for ``engine`` ("auto" resolved) and the
    versions of the programs it runs: ``{"engine": "quarto", "quarto": "1.6.40", ...}``."""
    if engine == "auto":
        engine = _auto_engine()
    if engine not in ("pandoc", "quarto"):
        raise RenderError(f"unknown engine {engine!r}; choose 'auto', 'pandoc' or 'quarto'")
    from importlib import metadata

    info = {"engine": engine}
    if engine == "quarto":
        quarto = shutil.which("quarto")
        if quarto is None:
            raise RenderError("Quarto is not installed (engine='quarto')")
        info["quarto"] = ".".join(map(str, _check_quarto(quarto)))
        info["quarto_path"] = quarto
    else:
        proc = subprocess.run([_pandoc_path(), "--version"], capture_output=True, text=True)
        info["pandoc"] = proc.stdout.split("\n", 1)[0].removeprefix("pandoc ").strip()
    try:
        info["typst"] = metadata.version("typst")  # compiles the PDF under both engines
    except metadata.PackageNotFoundError:  # pragma: no cover - dependency of the project
        pass
    return info


# --------------------------------------------------------------------------- entry point
def render_document(
    qmd: Path,
    outdir: Path,
    formats: Iterable[str] = ("html", "docx", "pdf"),
    numbers_file: Path | None = None,
    *,
    engine: str = "auto",
    variant: str = "audit",
    reference_docx: Path | None = None,
    line_numbers: bool = True,
    provenance_href: str | None = None,
    landscape: Iterable[str] = (),
    typst_template: Path | None = None,
) -> dict[str, Path]:
    """Render ``qmd`` into ``outdir`` as ``<stem>.html/.docx/.pdf``; returns format -> path.

    ``variant``: "audit" (numbers carry their provenance and link to their entry in the provenance
    document ``provenance_href``, e.g. "provenance.html", when given) or
    "submission" (plain numbers, no comments or links; page numbers, and line numbers
    in DOCX and PDF unless ``line_numbers`` is false). ``reference_docx``: the Word template of
    the submission DOCX (a journal's); default pandoc's own with page and line numbers added
    (:mod:`metabuild.docx_reference`). ``landscape``: ids of blocks (``#tbl-grade``) the
    submission DOCX sets on landscape pages, when the document has them. ``typst_template``: a
    journal's pandoc Typst template for the PDF in place of ``manuscript/typst/template.typ``
    (pandoc path; under Quarto the look comes from ``_quarto.yml``'s template partials).

    ``numbers_file`` is the registry (results/numbers.json); None lets the document's
    ``numbers-file`` metadata (default ``../results/numbers.json``) decide.
    ``engine``: "pandoc", "quarto", or "auto" (Quarto >= 1.6 when on PATH, else pandoc).
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
        engine = _auto_engine()
    if engine not in ("pandoc", "quarto"):
        raise RenderError(f"unknown engine {engine!r}; choose 'auto', 'pandoc' or 'quarto'")
    quarto = shutil.which("quarto") if engine == "quarto" else None
    if engine == "quarto":
        if quarto is None:
            raise RenderError("Quarto is not installed (engine='quarto')")
        _check_quarto(quarto)
    if numbers_file is not None and not Path(numbers_file).is_file():
        raise RenderError(f"number registry not found: {numbers_file}")
    if variant not in VARIANTS:
        raise RenderError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    outdir.mkdir(parents=True, exist_ok=True)
    cfg = dict(
        project_config(qmd),
        variant=variant,
        line_numbers=line_numbers,
        provenance_href=provenance_href,
        landscape=list(landscape),
        typst_template=Path(typst_template).resolve() if typst_template else None,
    )
    outputs = {fmt: outdir / f"{qmd.stem}.{FORMATS[fmt]}" for fmt in formats}
    with tempfile.TemporaryDirectory(prefix="metabuild-render-") as work:
        # the registry read once for the document's pandoc runs (see the module's docstring)
        cfg["numbers_subset"] = _write_subset(qmd, numbers_file, cfg["filters"], Path(work))
        if variant == "submission" and "docx" in formats:
            from metabuild.docx_reference import submission_reference_docx

            cfg["reference_docx"] = submission_reference_docx(
                Path(work) / "reference.docx", base=reference_docx, line_numbers=line_numbers
            )
        return _render_formats(qmd, outputs, cfg, numbers_file, engine, quarto)


def _render_formats(qmd: Path, outputs: dict[str, Path], cfg, numbers_file, engine: str, quarto) -> dict[str, Path]:
    if engine == "quarto":
        # side by side like the pandoc runs: each format renders its own staged copy
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(outputs) or 1) as pool:
            futures = [
                pool.submit(_quarto_render, quarto, qmd, cfg, fmt, target, numbers_file)
                for fmt, target in outputs.items()
            ]
        for future in futures:
            future.result()
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
