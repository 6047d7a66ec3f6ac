#!/usr/bin/env bash
# Mutation check: small deliberate mistakes, each made in a throwaway worktree of HEAD (the
# checkout itself is never touched), and the tests that must catch it. Prints, for each
# mistake, the tests that failed; exits non-zero if any mistake went uncaught.
#
#   scripts/mutations.sh            # all mistakes
#   scripts/mutations.sh rope       # one, by name: rope, window-cpu, window-gpu, top-p
#
# Run scripts/test.sh once first: it fetches the models and finds the zoo used here.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
tree="$work/tree"
git -C "$root" worktree add --detach "$tree" HEAD >/dev/null 2>&1 || { echo "mutations.sh: cannot make a worktree of HEAD" >&2; exit 1; }
cleanup() { git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

export CARGO_TARGET_DIR="$root/target/mutations" NODEVICE_SELECT=1
export LANTERNA_MODELS="${LANTERNA_MODELS:-$root/models}"
export LANTERNA_ZOO="${LANTERNA_ZOO:-$root/../shared/fixtures/zoo}"
status=0

# mutate NAME FILE FROM TO -- CARGO-TEST-ARGS [+ CARGO-TEST-ARGS ...]: one cargo run per
# `+`-separated set; the failing tests are named binary::test.
mutate() {
  local name=$1 file=$2 from=$3 to=$4
  shift 5
  if [ -n "${only:-}" ] && [ "$only" != "$name" ]; then return; fi
  (cd "$tree" && git checkout -q -- .)
  python3 - "$tree/$file" "$from" "$to" <<'PY' || { echo "$name: the text to change is not in $file"; status=1; return; }
import sys
path, old, new = sys.argv[1:]
s = open(path).read()
assert s.count(old) == 1, f"{old!r} occurs {s.count(old)} times"
open(path, "w").write(s.replace(old, new))
PY
  echo "== $name: $file: '$from' -> '$to'"
  local failed="" args=()
  for a in "$@" +; do
    if [ "$a" = "+" ]; then
      [ ${#args[@]} -gt 0 ] || continue
      local log="$work/$name.log"
      (cd "$tree" && cargo test --release --no-fail-fast "${args[@]}") >"$log" 2>&1
      failed+="$(awk '/Running unittests/ { bin = "lib" } /Running tests\// { bin = $2; sub(/^tests\//, "", bin); sub(/\.rs$/, "", bin) }
                      /^test .* FAILED$/ { print bin "::" $2 }' "$log" | sort -u | tr '\n' ' ')"
      args=()
    else
      args+=("$a")
    fi
  done
  if [ -n "$failed" ]; then
    echo "   caught by: $failed"
  else
    echo "   NOT CAUGHT"
    status=1
  fi
}

only="${1:-}"
mutate rope src/cpu/ops.rs \
  'base.powf(-2.0 / n_rot as f32)' 'base.powf(-2.0 / (n_rot as f32 + 2.0))' \
  -- --test rope --test llamacpp_cpu --test zoo
mutate window-cpu src/cpu/mod.rs \
  '(pos + 1).saturating_sub(w)' 'pos.saturating_sub(w)' \
  -- --test zoo + --test perplexity sliding_window
mutate window-gpu shaders/attention_common.wgsl \
  'w.first = w.n - P.window;' 'w.first = w.n - P.window + 1u;' \
  -- --test zoo --test gpu_kernels
mutate top-p src/sampler.rs \
  'keep = i + 1;' 'keep = i;' \
  -- --test sampler
exit $status
