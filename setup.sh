#!/usr/bin/env bash
# One command for a fresh machine: installs everything, then builds the paper.
#   bash setup.sh            install + build (snakemake --cores 4)
#   bash setup.sh --no-build install only
# System packages (Debian/Ubuntu, via apt-get when run as root or with sudo): R with metafor
# (the tests' independent reference), Chromium + chromedriver (browser test), poppler-utils
# (PDF text and page pictures), SLURM and munge (tests/test_slurm.py starts a one-node cluster
# of its own; on a machine with systemd the packages also enable their services, which stay
# idle without a configuration). Python packages go into .venv/ from requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(r-cran-metafor r-cran-jsonlite chromium chromium-driver poppler-utils libreoffice-writer slurm-wlm munge)
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup: no apt-get; install R + metafor, Chromium + chromedriver and poppler yourself (tests skip without them)"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .

# The RO-Crate 1.1 JSON-LD context, which roc-validator needs to check a run crate
# (`metabuild ro-crate --validate`) and cannot fetch without network: the rocrate 0.10.0 wheel
# ships it as rocrate/data/ro-crate.jsonld (later versions ship RO-Crate 1.3's).
CONTEXT=.venv/share/metabuild/ro-crate-1.1-context.jsonld
if [ ! -s "$CONTEXT" ]; then
  wheels="$(mktemp -d)"
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" rocrate==0.10.0
  mkdir -p "$(dirname "$CONTEXT")"
  .venv/bin/python -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("rocrate/data/ro-crate.jsonld"))' \
    "$wheels"/rocrate-0.10.0-*.whl >"$CONTEXT.tmp"
  mv "$CONTEXT.tmp" "$CONTEXT"
  rm -rf "$wheels"
fi

if [ "${1:-}" != "--no-build" ]; then
  export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
  .venv/bin/snakemake --cores 4
  echo "setup: built; the paper is in results/manuscript/ (paper.pdf, paper.docx, paper.html)"
fi
