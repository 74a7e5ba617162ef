"""The warm-worker job runner (metabuild.workers): what a script sees, logs, failures."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from metabuild import workers
from metabuild.workers import Items, JobScriptError, run_script


class _Namedlist(list):
    """Stand-in for Snakemake's Namedlist: a list with named entries (``items()``)."""

    def __init__(self, values, named):
        super().__init__(values)
        self._named = named

    def items(self):
        return self._named.items()


def _run(tmp_path: Path, body: str, **overrides) -> Path:
    script = tmp_path / "job.py"
    script.write_text(body, encoding="utf-8")
    log = tmp_path / "logs" / "job.log"
    out = tmp_path / "out.txt"
    kwargs = dict(
        rule_name="job",
        input=_Namedlist([str(script), "data/a.csv", "lib/x.py"], {"script": str(script), "code": ["lib/x.py"]}),
        output=_Namedlist([str(out)], {}),
        params=_Namedlist([{"k": [1, 2]}], {"spec": {"k": [1, 2]}}),
        wildcards=_Namedlist(["primary"], {"analysis": "primary"}),
        log=_Namedlist([str(log)], {}),
        config={"data_dir": "data"},
        workers=1,
    )
    kwargs.update(overrides)
    run_script(script, **kwargs)
    return log


def test_items_behave_like_a_namedlist_and_pickle():
    items = Items.from_namedlist(_Namedlist(["a", "b", "c"], {"first": "a", "rest": ["b", "c"]}))
    again = pickle.loads(pickle.dumps(items))
    for it in (items, again):
        assert list(it) == ["a", "b", "c"] and len(it) == 3 and it[1] == "b"
        assert it.first == "a" and it.rest == ["b", "c"] and it["rest"] == ["b", "c"]
        assert dict(it.items()) == {"first": "a", "rest": ["b", "c"]}
        with pytest.raises(AttributeError, match="no item named 'missing'"):
            _ = it.missing
    assert not Items.from_namedlist(_Namedlist([], {}))


def test_script_sees_the_job_and_writes_its_output(tmp_path):
    body = (
        "from pathlib import Path\n"
        "s = snakemake\n"
        "Path(s.output[0]).write_text(\n"
        "    f'{s.rule}|{s.wildcards.analysis}|{s.params.spec[\"k\"]}|{s.input.code}|'\n"
        "    f'{s.config[\"data_dir\"]}|{len(s.input)}'\n"
        ")\n"
    )
    _run(tmp_path, body)
    assert (tmp_path / "out.txt").read_text() == "job|primary|[1, 2]|['lib/x.py']|data|3"


def test_output_of_the_script_and_its_child_programs_goes_to_the_log(tmp_path):
    body = "import subprocess\nprint('from python')\nsubprocess.run(['echo', 'from a child program'], check=True)\n"
    log = _run(tmp_path, body)
    text = log.read_text()
    assert "from python" in text and "from a child program" in text


def test_a_failing_script_names_its_line_and_log(tmp_path):
    with pytest.raises(JobScriptError) as caught:
        _run(tmp_path, "x = 1\nraise ValueError('bad cell')\n")
    message = str(caught.value)
    assert "ValueError: bad cell" in message
    assert "job.py:2" in message and "job.log" in message
    assert "Traceback" in (tmp_path / "logs" / "job.log").read_text()


def test_system_exit_in_a_script_fails_the_job(tmp_path):
    with pytest.raises(JobScriptError, match="SystemExit: consistency gate failed"):
        _run(tmp_path, "raise SystemExit('consistency gate failed')\n")


def test_a_dead_worker_fails_the_job_and_the_next_job_gets_a_new_pool(tmp_path):
    with pytest.raises(RuntimeError, match="died"):
        _run(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    _run(tmp_path, "from pathlib import Path\nPath(snakemake.output[0]).write_text('ok')\n")
    assert (tmp_path / "out.txt").read_text() == "ok"


def test_every_preloaded_module_imports():
    # the forkserver ignores a failing preload import silently; a typo would cost speed only
    import importlib

    for name in workers.PRELOAD:
        importlib.import_module(name)


def test_temporaries_of_a_killed_job_are_removed_before_its_rerun(tmp_path):
    from metabuild.io import temporary_prefix

    out = tmp_path / "out.txt"
    stale_file = tmp_path / f"{temporary_prefix(out)}abc123.tmp"
    stale_dir = tmp_path / f"{temporary_prefix(out)}def456.tmp"
    other = tmp_path / f"{temporary_prefix(tmp_path / 'other.txt')}abc123.tmp"  # another output's
    stale_file.write_text("half a figure")
    stale_dir.mkdir()
    (stale_dir / "paper.docx").write_text("half a document")
    other.write_text("not ours")
    _run(tmp_path, "from pathlib import Path\nPath(snakemake.output[0]).write_text('ok')\n")
    assert not stale_file.exists() and not stale_dir.exists() and other.exists()


def test_the_clean_up_finds_what_the_atomic_writer_leaves(tmp_path, monkeypatch):
    import os

    from metabuild import io

    out = tmp_path / "figure.svg"
    left: list[str] = []

    def killed(src, dst):  # as if SIGKILL came between writing and moving into place
        left.append(src)
        raise SystemExit

    monkeypatch.setattr(os, "replace", killed)
    monkeypatch.setattr(io.Path, "unlink", lambda self, missing_ok=False: None)  # no clean-up ran
    with pytest.raises(SystemExit):
        io.atomic_write(out, lambda handle: handle.write(b"<svg/>"))
    monkeypatch.undo()
    assert [Path(p).exists() for p in left] == [True]
    assert io.remove_stale_temporaries(out) == [Path(left[0])]
    assert not Path(left[0]).exists()
