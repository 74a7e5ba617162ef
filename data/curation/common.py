"""Helpers shared by the curation scripts (reading published values, residual tables).

Not part of the main workflow: the scripts under data/curation/ are run by hand
(``python data/curation/<script>.py``) and write reconstructed rows into data/*.csv plus
their printed outputs under data/curation/output/.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = Path(__file__).resolve().parent / "output"


@dataclass(frozen=True)
class Published:
    key: str
    printed: str
    value: float | None
    kind: str
    decimals: int | None
    location: str
    note: str

    @property
    def tol(self) -> float:
        """Half a unit of the last printed decimal (the rounding interval)."""
        return 0.5 * 10.0 ** (-(self.decimals or 0))

    @property
    def bound(self) -> tuple[str, float] | None:
        """For '< .0001'-style forms: ('<', 0.0001)."""
        s = self.printed.replace("\u2212", "-").replace(" ", "")
        if s[:1] in "<>":
            return s[0], float(s[1:])
        return None


def read_published() -> list[Published]:
    with (DATA / "published_values.csv").open(encoding="utf-8", newline="") as f:
        out = []
        for r in csv.DictReader(f):
            out.append(
                Published(
                    key=r["key"],
                    printed=r["printed"],
                    value=float(r["value"]) if r["value"] != "" else None,
                    kind=r["kind"],
                    decimals=int(r["decimals"]) if r["decimals"] != "" else None,
                    location=r["location"],
                    note=r["note"],
                )
            )
    return out


def published_for(pubs: list[Published], key: str, location_startswith: str | None = None) -> list[Published]:
    return [
        p for p in pubs if p.key == key and (location_startswith is None or p.location.startswith(location_startswith))
    ]


def check_value(p: Published, reproduced: float) -> tuple[float | None, bool]:
    """(published minus reproduced or None, within printed rounding?)."""
    if p.bound is not None:
        op, thr = p.bound
        return None, (reproduced < thr) if op == "<" else (reproduced > thr)
    assert p.value is not None
    rep = reproduced
    if p.kind in ("i2", "percent"):
        pass  # both in percent
    res = p.value - rep
    return res, abs(res) <= p.tol + 1e-12


def fmt(x: float | None, nd: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if abs(x) != 0 and (abs(x) < 10 ** (-nd + 1)):
        return f"{x:.2e}"
    return f"{x:.{nd}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def round2(x: float) -> float:
    """Round half away from zero to 2 decimals (as an extractor would), via Decimal."""
    return float(Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP"))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def read_csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def data_study_ids() -> list[str]:
    """The trials data/studies.csv holds now (the published article's, or others since)."""
    return [r["study_id"] for r in read_csv_rows(DATA / "studies.csv")[1]]


def merge_trial_rows(path: Path, written: list[dict], known: set[str]) -> list[dict]:
    """The rows a curation script writes to the data file ``path``, merged with that file's
    rows of trials the script does not know.

    A script reconstructs the trials of the published article (``known``). Rows of any other
    trial (one added since, extracted from its report) are kept exactly as they are, after
    the script's rows; the script's rows of a trial data/studies.csv no longer holds (removed
    since) are not written. Both are reported by name.
    """
    present = set(data_study_ids())
    rows = [r for r in written if r["study_id"] in present]
    dropped = sorted({r["study_id"] for r in written} - present)
    kept: list[dict] = []
    if path.exists():
        kept = [r for r in read_csv_rows(path)[1] if r["study_id"] not in known]
    for study in sorted({r["study_id"] for r in kept}):
        n = sum(r["study_id"] == study for r in kept)
        print(f"{path.name}: {study} is not a trial this script reconstructs; its {n} rows are kept as entered")
    for study in dropped:
        print(f"{path.name}: {study} is not in data/studies.csv; its reconstructed rows are not written")
    return rows + kept
