#!/usr/bin/env bash
# The whole test suite, from a fresh clone: fetch the real models (cached, sha256-checked),
# then build the tests with optimization and run them. `.ci/run` calls exactly this.
#
# Tests are built in release mode because the CPU reference runs 135M- and 270M-parameter
# models in plain f32: unoptimized, that alone would take most of an hour.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash scripts/fetch-models.sh all
cargo test --release "$@"
