#!/usr/bin/env bash
# The whole test suite, from a fresh clone: fetch the real models (cached, sha256-checked),
# make sure a Vulkan adapter exists (Mesa's lavapipe where there is no GPU driver), then
# build the tests with optimization and run them. `.ci/run` calls exactly this.
#
# Tests are built in release mode because the CPU reference runs 135M- and 270M-parameter
# models in plain f32: unoptimized, that alone would take most of an hour.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash scripts/fetch-models.sh all

# GPU tests need an adapter. In CI, and on any machine with no Vulkan driver at all,
# install lavapipe (Mesa 25 from bookworm-backports); a machine with a GPU driver is left alone.
if [ -n "${CI:-}" ] || ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    bash scripts/install-lavapipe.sh
  else
    echo "test.sh: no Vulkan driver found and cannot install lavapipe (needs root + apt); GPU tests will say so" >&2
  fi
fi
# Mesa's device-select layer complains about XDG_RUNTIME_DIR on headless machines.
export NODEVICE_SELECT=1

cargo test --release "$@"
