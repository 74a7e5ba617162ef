"""List the registry keys the manuscript uses: writes manuscript/KEYS_USED.txt (one key a line).

Run: python manuscript/tools/list_keys.py   (scans manuscript/*.qmd for [key]{.num ...}, [key]{.cite}
and [key]{.trials ...} spans)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SPAN = re.compile(r"\[([A-Za-z0-9_.\-]+)\]\{\.(?:num|cite|trials)\b[^{}]*\}")
HERE = Path(__file__).resolve().parent.parent


def keys_in(paths: list[Path]) -> list[str]:
    found: set[str] = set()
    for p in paths:
        found.update(SPAN.findall(p.read_text(encoding="utf-8")))
    return sorted(found)


def main() -> int:
    qmds = sorted(HERE.glob("*.qmd"))
    keys = keys_in(qmds)
    (HERE / "KEYS_USED.txt").write_text("".join(k + "\n" for k in keys), encoding="utf-8")
    names = ", ".join(q.name for q in qmds)
    print(f"{len(keys)} keys from {names} -> {HERE / 'KEYS_USED.txt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
