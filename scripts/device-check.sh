#!/usr/bin/env bash
# The checks for the day a real GPU is lent (the `device` tool of this workplace).
#
#   bash scripts/device-check.sh prepare   # here: build, gather what travels into .devcheck/
#   (device tool) run  carry=[".devcheck", ".gl"]  timeout_s=540
#       command: bash scripts/device-check.sh run
#
# `prepare` builds the release binary and the GPU test binaries here (the device machine
# has no Rust toolchain or network), downloads the Vulkan loader packages into .gl/ as the
# tool's notes describe, and copies the real models that fit the 64 MiB a call carries
# (neither SmolLM2 at 92 MB nor Gemma-3 at 241 MB does: their tests and benches are
# listed as skipped there, never passed). `run` unpacks the loader, then runs, each
# writing under $OUT: the adapter list, the kernel and zoo tests under the adapter's own
# class (no LANTERNA_ADAPTER_CLASS), the real-model GPU-vs-CPU tests where a model
# travelled, `lanterna tune`, `bench -p 512 -n 128` (GPU and CPU) and `profile` for
# each model present, else for the committed tiny Qwen3 and Phi-3 models.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dc=.devcheck

prepare() {
  set -e
  grep -qx '/.devcheck/' .git/info/exclude 2>/dev/null || echo '/.devcheck/' >> .git/info/exclude
  grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
  rm -rf "$dc" && mkdir -p "$dc/bin" "$dc/models"
  cargo build --release --bins
  cp target/release/lanterna "$dc/bin/"
  for t in gpu_kernels zoo gpu_model; do
    exe=$(cargo test --release --no-run --test "$t" --message-format=json 2>/dev/null |
      T="$t" python3 -c 'import json,os,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and m["target"]["name"] == os.environ["T"]: print(m["executable"])' | tail -1)
    cp "$exe" "$dc/bin/$t"
  done
  strip "$dc"/bin/* || true
  for m in models/*.gguf; do
    [ -f "$m" ] || continue
    if [ "$(stat -c %s "$m")" -lt $((24 * 1024 * 1024)) ]; then cp "$m" "$dc/models/"; fi
  done
  if [ ! -d .gl ]; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update >/dev/null
    (cd .gl && apt-get $o download libvulkan1)
  fi
  du -sh "$dc" .gl
}

run_checks() {
  : "${OUT:?run this on the device machine, where OUT is set}"
  # The loader, where the machine has none (the tool's notes).
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  fi
  if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  # The test binaries find fixtures under the path they were built at.
  built_at=$(strings "$dc/bin/gpu_kernels" | grep -m1 -o '/[^ ]*/tests/fixtures' | sed 's#/tests/fixtures##')
  if [ -n "$built_at" ] && [ "$built_at" != "$root" ] && [ ! -e "$built_at" ]; then
    mkdir -p "$(dirname "$built_at")" && ln -s "$root" "$built_at"
  fi
  export LANTERNA_MODELS="$root/$dc/models" LANTERNA_ZOO="$root/tests/fixtures/zoo" LANTERNA_TEST_ALLOW_SKIP=1
  export LANTERNA_TUNE_CACHE="$OUT/tune.json"
  bin="$dc/bin"
  "$bin/lanterna" devices > "$OUT/devices.txt" 2>&1
  nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv >> "$OUT/devices.txt" 2>&1
  {
    echo "== gpu_kernels"; timeout 200 "$bin/gpu_kernels" --test-threads 1
    echo "== zoo"; timeout 120 "$bin/zoo"
    if ls "$dc"/models/*.gguf >/dev/null 2>&1; then
      echo "== gpu_model"; timeout 120 "$bin/gpu_model"
    else
      echo "== gpu_model: not run: no real model travelled (SmolLM2's 92 MB and Gemma-3's 241 MB exceed the 64 MiB a call carries)"
    fi
  } > "$OUT/tests.txt" 2>&1
  models=$(ls "$dc"/models/*.gguf 2>/dev/null)
  [ -n "$models" ] || models="tests/fixtures/zoo/qwen3/qwen3-Q4_K_M.gguf tests/fixtures/zoo/phi3/phi3-Q4_K_M.gguf"
  for m in $models; do
    n=$(basename "$m" .gguf)
    {
      echo "== $n tune"; timeout 60 "$bin/lanterna" tune -m "$m"
      for d in gpu cpu; do
        echo "== $n bench $d"; timeout 90 "$bin/lanterna" bench -m "$m" -p 512 -n 128 -r 3 --device "$d"
      done
      echo "== $n profile"; timeout 60 "$bin/lanterna" profile -m "$m" -n 16
    } > "$OUT/$n.txt" 2>&1
  done
  grep -h "test result\|skipped\|not run" "$OUT/tests.txt"
  grep -h "^| .* tg128\|^| .* pp512" "$OUT"/*.txt
}

case "${1:-}" in
  prepare) prepare ;;
  run) run_checks ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
