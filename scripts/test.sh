#!/usr/bin/env bash
# The whole test suite, from a fresh clone: fetch the real models (cached, sha256-checked),
# locate the zoo of tiny models, make sure a GPU adapter really works (installing Mesa's
# lavapipe when none does), then build the tests with optimization and run them.
# `.ci/run` calls exactly this. Arguments go to `cargo test` (e.g. `--test zoo`).
#
# Nothing the tests need is optional: a missing adapter, model or fixture fails the test
# that needs it. The one opt-out is LANTERNA_TEST_ALLOW_SKIP=1, under which such tests
# record what they skipped, and this script lists it at the end.
#
# Tests are built in release mode because the CPU reference runs 135M- and 270M-parameter
# models in plain f32: unoptimized, that alone would take most of an hour.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash scripts/fetch-models.sh all

# The zoo (tiny random-weight models of every family, ~90 MB) is not committed: it sits in
# shared/fixtures/zoo beside the repository. LANTERNA_ZOO, when set, wins.
if [ -z "${LANTERNA_ZOO:-}" ] && [ -d "$root/../shared/fixtures/zoo" ]; then
  export LANTERNA_ZOO="$root/../shared/fixtures/zoo"
fi
if [ -z "${LANTERNA_ZOO:-}" ] || [ ! -d "$LANTERNA_ZOO" ]; then
  echo "test.sh: no zoo found (set LANTERNA_ZOO or put shared/ beside the repository): the zoo tests will fail" >&2
fi

# Python packages the tests use (the official openai client, against `lanterna serve`) go
# into a virtual environment of their own, made once and kept (git-ignored).
venv="$root/.venv-test"
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  echo "test.sh: making the test virtual environment in $venv (the openai client)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.40"
fi
export LANTERNA_TEST_PYTHON="$venv/bin/python"

# Formatting, lints and the shape of the code are part of the suite: a diff, a warning, a
# function in src/ over 80 lines or a module that imports one importing it back fails the run.
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
python3 scripts/fn-lengths.py 5 --max 80
python3 scripts/module-cycles.py

# Mesa's device-select layer complains about XDG_RUNTIME_DIR on headless machines.
export NODEVICE_SELECT=1
# Tests run the default matvec shapes: tuning on each model's first run would cost
# minutes of CI and make results depend on the user's cache. tests/cli.rs tests the
# tuner itself with a cache of its own.
export LANTERNA_NO_TUNE=1
cargo build --release --bins

# Test the device, not a driver file: one greedy token of the committed tiny model on the GPU.
tiny="tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf"
gpu_works() { target/release/lanterna run -m "$tiny" --device gpu --temp 0 -n 1 -p hi >/dev/null 2>&1; }
if ! gpu_works; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: no working GPU adapter; installing Mesa's lavapipe" >&2
    bash scripts/install-lavapipe.sh
  else
    echo "test.sh: no working GPU adapter, and installing lavapipe needs root and apt" >&2
  fi
  if gpu_works; then
    echo "test.sh: lavapipe works" >&2
  else
    echo "test.sh: still no working GPU adapter: the GPU tests will fail" >&2
    target/release/lanterna devices >&2 || true
  fi
fi

skipped="${CARGO_TARGET_DIR:-$root/target}/tmp/lanterna-skipped.txt"
rm -f "$skipped"
status=0
log="$(mktemp)"
cargo test --release --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

# Every per-adapter choice is also tested as the other kind of adapter would make it
# (LANTERNA_ADAPTER_CLASS: on lavapipe, the configuration a discrete GPU would run): the
# kernel tests, both real models against llama.cpp, and the zoo. Left out here, having run
# above: gpu_model's chunked-prefill test (its prompt matmuls have no per-adapter choice, and
# its ~200 one-at-a-time steps would add minutes), the readback comparison (both readbacks
# under one class either way) and Gemma-3's f16 cache (a minute; SmolLM2's f16 cache runs
# the other class's attention). naga's runtime checks are flipped too (LANTERNA_SHADER_CHECKS,
# off on Vulkan by default). Not when arguments select tests (a narrower run).
if [ $# -eq 0 ]; then
  own=$(target/release/lanterna devices 2>/dev/null | sed -n 's/^ *kernels: \([a-z]*\) class.*/\1/p' | head -1)
  other=$([ "$own" = gpu ] && echo cpu || echo gpu)
  own_checks=$(target/release/lanterna devices 2>/dev/null | sed -n 's/.*runtime checks \([A-Za-z]*\).*/\1/p' | head -1)
  checks=$([ "$own_checks" = On ] && echo off || echo on)
  echo "test.sh: the GPU tests again as for a ${other^^} adapter (LANTERNA_ADAPTER_CLASS=$other; this one is ${own:-unknown}), naga's checks $checks"
  LANTERNA_ADAPTER_CLASS=$other LANTERNA_SHADER_CHECKS=$checks cargo test --release --no-fail-fast --test gpu_kernels --test zoo --test gpu_model -- \
    --skip chunked_prefill --skip topk_readback --skip gemma3_f16_kv 2>&1 | tee -a "$log" || status=$?
fi
# One closing line for the whole run (cargo's last line is the doc-tests' own count).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
if [ -s "$skipped" ]; then
  echo
  n_tests=$(cut -d: -f1 "$skipped" | sort -u | wc -l)
  echo "SKIPPED under LANTERNA_TEST_ALLOW_SKIP — $n_tests tests did not run what they were for (they count as passed above):"
  sed 's/^/  /' "$skipped"
fi
exit $status
