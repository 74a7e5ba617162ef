"""Configuration and data cannot make the build execute code or write outside results/.

* config YAML is read with a safe loader: a ``!!python/object`` tag is refused, nothing runs;
* names that become file names (analysis names, figure stems, study ids) are checked before
  any output: ``../../evil``, ``Evil``, ``a/b`` are rejected naming the key;
* ``data_dir``/``results_dir`` cannot climb out with ``..``;
* after a build, every new file of the project tree is under results_dir or .snakemake/.

Library-level checks (``snakemake.utils.validate``, ``workflow_support.check_config``,
``data.validate_dataset``) are used where no build is needed; ``snakemake -n`` where the
Snakefile's own behaviour is the point.
"""

from __future__ import annotations

import copy
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "workflow" / "lib"))

import synthetic  # noqa: E402

from metabuild import data as mdata  # noqa: E402
from metabuild import workflow_support as ws  # noqa: E402

SCHEMA = ROOT / "config" / "schemas" / "config.schema.yaml"
FIXTURE = ROOT / "tests" / "fixtures" / "valid_data"
BAD_NAMES = ["../../evil", "Evil", "a/b"]


@pytest.fixture(scope="module")
def project_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def small_copy(tmp_path_factory) -> Path:
    """A copy of the project with a small synthetic review (for snakemake -n)."""
    dest = tmp_path_factory.mktemp("cfg") / "project"
    synthetic.copy_project(dest, data=None)
    synthetic.make_review(dest, 6, 4, seed=3)
    return dest


def _validate(config: dict) -> None:
    from snakemake.utils import validate

    validate(config, str(SCHEMA))


# ------------------------------------------------------------------------------ safe YAML
def test_python_tag_refused_by_snakemake(small_copy, tmp_path):
    marker = tmp_path / "pwned"
    evil = small_copy / "config" / "evil.yaml"
    evil.write_text(f'data_dir: !!python/object/apply:os.system ["touch {marker}"]\n')
    proc = synthetic.run_snakemake(small_copy, "-n", "--configfile", str(evil), timeout=120)
    evil.unlink()
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert not marker.exists(), "a !!python tag in the config executed code"
    assert "evil.yaml" in proc.stdout or "Config file" in proc.stdout, proc.stdout[-2000:]
    assert not (small_copy / "results").exists()


def test_python_tag_refused_by_project_loaders(tmp_path):
    """Every YAML reader of the project (Snakemake's configfile loader, render's front matter
    and _quarto.yml reader) uses a safe loader."""
    from snakemake.common.configfile import load_configfile

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'a: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do; the point is: no code runs
        load_configfile(str(evil))
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(evil.read_text())
    assert not marker.exists()
    unsafe = [
        p
        for p in (ROOT / "workflow").rglob("*.py")
        if "yaml.load(" in p.read_text(encoding="utf-8") or "unsafe_load" in p.read_text(encoding="utf-8")
    ]
    assert not unsafe, f"non-safe YAML loading in {unsafe}"


# ------------------------------------------------------------------------------ names
@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_analysis_name_rejected_by_schema(project_config, bad):
    config = copy.deepcopy(project_config)
    config["analyses"][bad] = dict(config["analyses"]["primary"])
    with pytest.raises(Exception) as error:
        _validate(config)
    assert bad in str(error.value) and "analyses" in str(error.value)


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_analysis_name_rejected_by_check_config(project_config, bad):
    config = copy.deepcopy(project_config)
    config["analyses"][bad] = dict(config["analyses"]["primary"])
    with pytest.raises(ws.ConfigError, match="analyses." + re.escape(bad)):
        ws.check_config(config)


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_figure_stem_rejected(project_config, bad):
    config = copy.deepcopy(project_config)
    config["analyses"]["primary"]["figure"] = bad
    with pytest.raises(Exception, match="figure"):
        _validate(config)
    with pytest.raises(ws.ConfigError, match=r"analyses\.primary\.figure"):
        ws.check_config(config)


@pytest.mark.parametrize("key", ["data_dir", "results_dir"])
@pytest.mark.parametrize("value", ["../outside", "results/../../x", "/tmp/a b"])
def test_dirs_cannot_escape(project_config, key, value):
    config = copy.deepcopy(project_config)
    config[key] = value
    with pytest.raises(Exception, match=key):
        _validate(config)


def test_bad_analysis_name_stops_snakemake_before_output(small_copy):
    config_file = small_copy / "config" / "config.yaml"
    original = config_file.read_text(encoding="utf-8")
    config = yaml.safe_load(original)
    config["analyses"]["../../evil"] = dict(config["analyses"]["primary"])
    config_file.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    before = synthetic.tree_snapshot(small_copy.parent)
    try:
        proc = synthetic.run_snakemake(small_copy, timeout=120)
    finally:
        config_file.write_text(original, encoding="utf-8")
    assert proc.returncode != 0
    assert "../../evil" in proc.stdout and "analyses" in proc.stdout, proc.stdout[-2000:]
    assert not (small_copy / "results").exists()
    after = synthetic.tree_snapshot(small_copy.parent)
    new = [p for p in set(after) - set(before) if "/.snakemake/" not in f"/{p}"]
    assert not new, f"files written by a build that should not start: {new}"


# ------------------------------------------------------------------------------ study ids
@pytest.mark.parametrize("bad_id", ["../x", "X1", "a/b", "a.b"])
def test_path_like_study_id_rejected(tmp_path, bad_id):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for f in FIXTURE.glob("*.csv"):
        (data_dir / f.name).write_text(f.read_text(encoding="utf-8").replace("alpha2010", bad_id), encoding="utf-8")
    shutil.copytree(ROOT / "data" / "schemas", data_dir / "schemas")
    with pytest.raises(mdata.DataValidationError) as error:
        mdata.validate_dataset(data_dir)
    text = str(error.value)
    assert 'studies.csv, row 2, column "study_id"' in text, text
    assert bad_id in text


# ------------------------------------------------------------------------------ writes
@pytest.mark.slow
def test_build_writes_only_under_results_and_snakemake(tmp_path):
    """A build with results_dir set elsewhere than results/ writes nothing else in the tree.

    (Snakemake's own caches under ~/.cache/snakemake are outside the project and not checked.)"""
    dest = tmp_path / "project"
    synthetic.copy_project(dest, data=None)
    synthetic.make_review(dest, 6, 4, seed=5, results_dir="out/build")
    before = synthetic.tree_snapshot(dest)
    proc = synthetic.run_snakemake(dest, *synthetic.non_render_targets(dest), timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:]
    after = synthetic.tree_snapshot(dest)
    changed = sorted(p for p in after if p not in before or after[p] != before[p])
    outside = [p for p in changed if not (p.startswith("out/build/") or p.startswith(".snakemake/"))]
    assert (dest / "out" / "build" / "numbers.json").is_file()
    assert not (dest / "results").exists(), "results/ written although results_dir is out/build"
    assert not outside, f"files written outside results_dir and .snakemake/: {outside}"
    assert not [p for p in before if p not in after], "the build deleted project files"
