#!/usr/bin/env bash
# tiny-run.sh BIN WORK EPOCHS — the cluster tests' run: two months of synthetic data in WORK/data, its
# normalisation in WORK/norm.json, and WORK/tiny.yaml (the F = 8 model, ~80 steps of batch 8 per epoch).
set -euo pipefail
BIN=$1 WORK=$2 EPOCHS=$3
"$BIN/swiftrain" synth --out "$WORK/data" --from 2016-04-01 --to 2016-05-31T23:00 >/dev/null
cat > "$WORK/tiny.yaml" <<YAML
data: [$WORK/data/era5625, $WORK/data/imerg5625, $WORK/data/simsat5625]
normalisation: $WORK/norm.json
sources: simsat
imerg: true
inc_time: true
no_relu: true
train_start: 2016-04-01
train_end: 2016-04-20T23:00
valid_start: 2016-05-01
valid_end: 2016-05-10T23:00
test_start: 2016-05-11
test_end: 2016-05-31T23:00
hidden_1: 8
hidden_2: 4
batch_size: 8
epochs: $EPOCHS
lr: 0.001
YAML
"$BIN/swiftrain" normalize --config "$WORK/tiny.yaml" >/dev/null
