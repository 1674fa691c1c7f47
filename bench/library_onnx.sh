#!/usr/bin/env bash
# qa's question encoder beside sentence-transformers' own ONNX backend (bench/library_onnx.py).
# The library's backend needs optimum-onnx, which requires transformers<4.58: this makes a
# virtual environment of that stack for the comparison, and qa's export with the repo's .venv.
# Usage: bench/library_onnx.sh [--questions 200] [--rounds 3]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$repo/.venv/bin/python" - "$work/cache" <<'PY'
import sys
from pathlib import Path
from qa.embedding import Embedder
Embedder(backend="onnx", onnx_cache=Path(sys.argv[1]))
PY
export_dir="$(dirname "$(ls "$work"/cache/*/export.json)")"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet torch==2.13.0
"$work/venv/bin/pip" install --quiet -e "$repo" "transformers<4.58" "sentence-transformers<5.2" \
  "optimum-onnx[onnxruntime]"
cd "$repo"
HF_HUB_OFFLINE=1 "$work/venv/bin/python" -m bench.library_onnx --export "$export_dir" "$@" 2>&1 \
  | grep -v -e "Exporting the model" -e "torch_dtype" -e "inverted_mask" -e "save_pretrained"
