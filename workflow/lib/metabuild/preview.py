"""``metabuild preview``: rebuild on every edit and show the document in the browser.

Watches ``data/``, ``config/`` and ``manuscript/`` (``watchfiles``), rebuilds through Snakemake
and serves ``results/`` on 127.0.0.1; a page open in the browser reloads itself when the file
it shows has changed (and keeps its scroll position). Stop with Ctrl-C or ``kill PID``.

What makes an edit quick to see:

* **Warm workers that outlive a build.** Snakemake runs in this process through its Python API
  (one run per rebuild), with ``use_threads`` as ``profiles/default/config.yaml`` sets it, so
  the rules' one-line ``run:`` blocks hand their scripts to :mod:`metabuild.workers`' pool.
  The pool is a module global of this process: started (and its workers forked) once, when the
  preview starts, it serves every rebuild. ``snakemake`` on the command line starts a new pool
  per build (1.2-2.4 s on 2 cores).
* **The page being read first.** Each rebuild has two passes: first the file the browser shows
  (by default ``results/manuscript/paper.html``, the audit rendering), with the rendering job
  asked for HTML only, then everything else (the other document, DOCX, PDF, the submission
  rendering). The page reloads after the first pass. The HTML-only pass does not count a
  change of the rendering job's ``params`` (its formats) as a reason to rerun, so an edit that
  changes nothing the page shows renders nothing; the second pass renders the job's other
  formats (and the HTML again, with the same bytes).

A newer edit during a rebuild starts a new rebuild as soon as the current pass ends (a data file
edited after Snakemake planned the pass fails the job that reads it, as in any build; the next
pass builds the new data). A failed build leaves the last good page on screen with the error in
a banner (as text; the build log has the details).

The reload script is added to the page as it is served, never to the built file: the files in
``results/`` are those ``snakemake`` makes. Library code (``workflow/lib``) is not watched: the
warm workers keep the library they imported, so restart the preview after editing it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import mimetypes
import os
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELP = "rebuild on every edit of data/, config/ or manuscript/ and show the document in the browser"

#: folders an author edits; anything else (results/, .snakemake/) is the build's
WATCHED = ("data", "config", "manuscript")
#: the page opened at "/": the audit rendering of the paper (numbers linked to their provenance)
DEFAULT_PAGE = "manuscript/paper.html"
#: how often the page asks whether it changed (ms); also the server's share of edit-to-visible
POLL_MS = 250
STATE_PATH = "/__preview__/state"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--directory", default=".", help="the project (default: the current directory)")
    parser.add_argument("--cores", type=int, default=2, help="cores for the build and job workers (default: 2)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--page", default=DEFAULT_PAGE, help=f"page under results/ to build first until one is opened ({DEFAULT_PAGE})"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the preview's own lines, not Snakemake's log")
    return parser


def run(args: argparse.Namespace) -> int:
    preview = Preview(
        Path(args.directory).resolve(), cores=args.cores, port=args.port, page=args.page, quiet=args.quiet
    )
    return preview.run()


@dataclass
class State:
    """What the page and the benchmark ask about (``/__preview__/state``)."""

    building: bool = False
    passes: int = 0  # build passes finished (successful or not)
    rebuilds: int = 0  # complete rebuilds (both passes) without a newer edit waiting
    error: str | None = None
    last_edit: float | None = None  # time.time() of the edit the current rebuild is for
    timings: list[dict[str, Any]] = field(default_factory=list)


class Preview:
    def __init__(self, root: Path, *, cores: int = 2, port: int = 0, page: str = DEFAULT_PAGE, quiet: bool = False):
        if not (root / "Snakefile").is_file():
            from metabuild.audit.common import AuditError

            raise AuditError(f"{root} has no Snakefile: give the project with --directory")
        self.root = root
        self.cores = max(1, cores)
        self.quiet = quiet
        config = _read_config(root)
        self.results = root / str(config.get("results_dir", "results"))
        manuscript = config.get("manuscript") or {}
        #: documents whose HTML can be built first: ``<folder>/<document>.html``
        self.documents = set(manuscript.get("documents") or ["paper", "supplement"])
        self.html_first = "html" in (manuscript.get("formats") or ["html"])
        self.watched = [root / name for name in dict.fromkeys([str(config.get("data_dir", "data")), *WATCHED])]
        self.page = page
        self.state = State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.preview = self
        self._digests: dict[Path, tuple[tuple[int, int], str]] = {}

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.page}"

    # ------------------------------------------------------------------ lifetime
    def run(self) -> int:
        """Serve, watch and rebuild until SIGINT or SIGTERM; then end every process it started."""
        from metabuild import workers

        # Orphans of a killed worker (pandoc, typst) become this process's children, so that
        # the clean-up below finds and ends them (the forkserver does the same for its own).
        workers.become_subreaper()
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        # Ctrl-C reaches the terminal's whole process group: the forkserver starts (in
        # keep_warm) with SIGINT ignored, as its workers and their programs then are, so that
        # only this process sees it and ends them in order (not workers dying mid-job first).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # daemon threads: a build that does not end within the minute below cannot hold the exit
        threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
            threading.Thread(target=self._watch, name="preview-watch", daemon=True),
            threading.Thread(target=self._build_loop, name="preview-build", daemon=True),
        ]
        try:
            os.chdir(self.root)  # Snakemake's API and the jobs work relative to the project
            workers.keep_warm(self.cores)
            signal.signal(signal.SIGINT, lambda *_: self._stop.set())
            watching = ", ".join(os.path.relpath(path, self.root) for path in self.watched)
            self._say(f"metabuild preview: {self.url}  (watching {watching}; Ctrl-C stops)")
            self._dirty.set()  # the first build brings results/ up to date
            for thread in threads:
                thread.start()
            while not self._stop.wait(0.2):
                pass
            self._say("metabuild preview: stopping")
        finally:
            self._stop.set()
            if threads[0].is_alive():
                self._server.shutdown()
            self._server.server_close()
            # Running jobs fail at once (Snakemake then deletes their outputs and releases its lock).
            workers.close_pool()
            for thread in threads[1:]:
                if thread.is_alive():
                    thread.join(timeout=60)
            # multiprocessing's resource tracker is spared: the interpreter's exit still talks
            # to it (it would start a new one), and it ends by itself when this process has.
            from multiprocessing import resource_tracker

            workers.end_descendants(spare=[getattr(resource_tracker._resource_tracker, "_pid", None) or -1])
        return 0

    def _say(self, text: str) -> None:
        print(text, flush=True)

    # ------------------------------------------------------------------ watching
    def _watch(self) -> None:
        import watchfiles

        paths = [path for path in self.watched if path.is_dir()]
        # step: yield 50 ms after the last change of a burst (an editor's save is several events)
        for changes in watchfiles.watch(*paths, stop_event=self._stop, step=50, raise_interrupt=False):
            names = sorted({os.path.relpath(path, self.root) for _, path in changes})
            self._say(f"changed: {', '.join(names)}")
            with self._lock:
                self.state.last_edit = time.time()
            self._dirty.set()

    # ------------------------------------------------------------------ building
    def _build_loop(self) -> None:
        while not self._stop.is_set():
            if not self._dirty.wait(0.2):
                continue
            self._dirty.clear()
            page = self.page
            started = time.time()
            with self._lock:
                self.state.building = True
                edit = self.state.last_edit
            target = (self.results / page).relative_to(self.root).as_posix()
            first = self._build([target], html_only=True) if self.html_first else None
            seen = time.time()
            if self._stop.is_set() or self._dirty.is_set():
                self._finish(None)
                continue  # a newer edit: build that first
            rest = self._build([], html_only=False)
            if not self.html_first:
                seen = time.time()
            with self._lock:
                self.state.rebuilds += 1
                self.state.timings.append(
                    {
                        "page": page,
                        "first_pass_s": round(seen - started, 3),
                        "both_passes_s": round(time.time() - started, 3),
                        "since_edit_s": round(seen - edit, 3) if edit else None,
                    }
                )
            self._finish(first or rest)
            if not self._stop.is_set():
                self._say(f"rebuilt {page} in {seen - started:.1f} s, everything in {time.time() - started:.1f} s")

    def _finish(self, error: str | None) -> None:
        with self._lock:
            self.state.building = self._dirty.is_set()
            self.state.error = error

    def _build(self, targets: list[str], *, html_only: bool) -> str | None:
        """One Snakemake run in this process; the error's text, or None when it succeeded."""
        from snakemake.api import SnakemakeApi
        from snakemake.settings.enums import Quietness, RerunTrigger
        from snakemake.settings.types import (
            ConfigSettings,
            DAGSettings,
            ExecutionSettings,
            OutputSettings,
            ResourceSettings,
        )

        config = {"manuscript": {"formats": ["html"]}} if html_only else {}
        triggers = RerunTrigger.all() - {RerunTrigger.PARAMS} if html_only else RerunTrigger.all()
        quiet = {Quietness.ALL} if self.quiet else {Quietness.PROGRESS}
        try:
            with SnakemakeApi(OutputSettings(quiet=quiet)) as api:
                workflow = api.workflow(
                    resource_settings=ResourceSettings(cores=self.cores),
                    config_settings=ConfigSettings(config=config),
                    snakefile=self.root / "Snakefile",
                    workdir=self.root,
                )
                dag = workflow.dag(DAGSettings(targets=frozenset(targets), rerun_triggers=frozenset(triggers)))
                # use_threads: run the `run:` jobs here, in the warm pool (profiles/default does
                # the same for the command line)
                dag.execute_workflow(executor="local", execution_settings=ExecutionSettings(use_threads=True))
        except Exception as error:  # noqa: BLE001 - any build failure is shown, and the preview goes on
            message = str(error).strip() or type(error).__name__
            if not self._stop.is_set():
                self._say(f"build failed: {message}")
            return message
        finally:
            with self._lock:
                self.state.passes += 1
        return None

    # ------------------------------------------------------------------ serving
    def digest(self, path: Path) -> str | None:
        """SHA-256 of a built file (cached by size and mtime): the page reloads when it changes."""
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._digests.get(path)
        if cached and cached[0] == key:
            return cached[1]
        value = hashlib.sha256(path.read_bytes()).hexdigest()
        self._digests[path] = (key, value)
        return value

    def resolve(self, url_path: str) -> Path | None:
        """The file under results/ for a URL path, or None (nothing outside results/)."""
        relative = urllib.parse.unquote(url_path).lstrip("/")
        path = (self.results / relative).resolve()
        if path != self.results and self.results not in path.parents:
            return None
        return path

    def reading(self, url_path: str) -> None:
        """The browser shows this page: build it first from now on."""
        path = self.resolve(url_path)
        if path is not None and path.suffix == ".html" and path.stem in self.documents:
            self.page = path.relative_to(self.results).as_posix()

    def state_for(self, url_path: str) -> dict[str, Any]:
        path = self.resolve(url_path)
        with self._lock:
            state = {
                "digest": self.digest(path) if path else None,
                "building": self.state.building,
                "error": self.state.error,
                "passes": self.state.passes,
                "rebuilds": self.state.rebuilds,
                "timings": self.state.timings[-5:],
            }
        return state


def _read_config(root: Path) -> dict[str, Any]:
    """The entries of config/config.yaml the preview needs (Snakemake checks the file itself)."""
    import yaml

    path = root / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return config if isinstance(config, dict) else {}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    preview: Preview


#: Added to HTML pages as they are served: polls the state endpoint and reloads the page when
#: the file changed; shows "rebuilding" and a failed build's message as text.
RELOAD_SCRIPT = """
<script>/* metabuild preview (added by the preview server; not in the built file) */
(() => {
  const page = location.pathname, key = "metabuild-preview-scroll:" + page;
  let digest = %(digest)s;
  const badge = document.createElement("div");
  badge.id = "metabuild-preview-status";
  badge.style.cssText = "position:fixed;right:1em;bottom:1em;max-width:40em;padding:.4em .8em;" +
    "background:#333;color:#fff;font:13px sans-serif;white-space:pre-wrap;z-index:99999;display:none";
  document.body.appendChild(badge);
  const y = sessionStorage.getItem(key);
  if (y !== null) { window.scrollTo(0, Number(y)); sessionStorage.removeItem(key); }
  async function poll() {
    try {
      const r = await fetch("%(state)s?page=" + encodeURIComponent(page), {cache: "no-store"});
      const s = await r.json();
      if (s.digest && s.digest !== digest) {
        sessionStorage.setItem(key, String(window.scrollY));
        location.reload();
        return;
      }
      badge.textContent = s.error ? "build failed: " + s.error : (s.building ? "rebuilding\\u2026" : "");
    } catch (e) {
      badge.textContent = "the preview server has stopped";
    }
    badge.style.display = badge.textContent ? "block" : "none";
    setTimeout(poll, %(poll)d);
  }
  setTimeout(poll, %(poll)d);
})();
</script>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per poll would bury the build's log

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        preview = self.server.preview
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self.send_response(302)
            self.send_header("Location", "/" + preview.page)
            self.end_headers()
            return
        if url.path == STATE_PATH:
            page = urllib.parse.parse_qs(url.query).get("page", ["/" + preview.page])[0]
            preview.reading(page)
            self._send(200, json.dumps(preview.state_for(page)).encode(), "application/json")
            return
        path = preview.resolve(url.path)
        if path is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        if not path.is_file():
            if path.suffix == ".html":  # not built yet: this page reloads itself once it is
                waiting = b"<html><body><p>Not built yet: this page reloads when it is.</p></body></html>"
                self._send(404, inject(waiting, None), "text/html; charset=utf-8")
            else:
                self._send(404, b"not built (yet)\n", "text/plain; charset=utf-8")
            return
        body = path.read_bytes()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".html":
            preview.reading(url.path)
            body = inject(body, preview.digest(path))
            kind = "text/html; charset=utf-8"
        self._send(200, body, kind)

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


def inject(html: bytes, digest: str | None) -> bytes:
    """The page with the reload script before its last ``</body>`` (or at its end)."""
    script = (RELOAD_SCRIPT % {"digest": json.dumps(digest), "state": STATE_PATH, "poll": POLL_MS}).encode()
    at = html.lower().rfind(b"</body>")
    return html + script if at < 0 else html[:at] + script + html[at:]


if __name__ == "__main__":  # pragma: no cover - `python -m metabuild preview` is the entry point
    parser = add_arguments(argparse.ArgumentParser(description=__doc__))
    sys.exit(run(parser.parse_args()))
