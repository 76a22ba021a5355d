#!/usr/bin/env bash
# Regenerate the pictures shown in the README's "See it" section.
# Needs the plot extra:  pip install -e '.[plot]'
# Usage (from the repository root):  bash docs/make-images.sh
set -euo pipefail
out=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

crossent plot curve --out "$out/cross-entropy-curve.png"
crossent plot softmax --out "$out/softmax-worked-example.png"
crossent plot animate --dataset moons --epochs 3 --seed 0 --out "$out/moons-training.gif"
crossent experiment slowdown --out "$tmp/slowdown" > /dev/null
cp "$tmp/slowdown/slowdown-output-and-cost.png" "$out/slowdown.png"
crossent train --quiet --epochs 20 --validation-split 0.2 --schedule warmup-cosine --save "$tmp/digits.npz" > /dev/null
crossent plot weights "$tmp/digits.npz" --out "$out/digits-weights.png"
crossent plot history "$tmp/digits.npz" --out "$out/digits-history.png"
ls -l "$out"
