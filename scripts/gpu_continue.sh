#!/usr/bin/env bash
# Continue the GAACNN trunk on a lent GPU machine that reaches no network and takes a 64 MiB tree
# (issue 20, item 8). Run `scripts/gpu_bundle.sh` here first: it leaves three ignored folders that
# travel with the tree (name them in the device tool's `carry`):
#   .whl   the wheels that machine lacks (compressai, pytorch-msssim);
#   .pack  CID22 train as lossless WebP with each image's pixel digest (gaacnn.data.pack);
#   .trunk the trunk's compact checkpoint (trunks.store), xz-compressed, with its logs.
# There: python3 holds torch; this installs the wheels, restores the trunk, grows it for MINUTES at
# GPU_CONTINUE's batch and learning rate, and writes compact snapshots (each under the 16 MiB a file may
# be) and the logs into OUT as it goes, so that a run stopped at its time limit still returns its steps.
#   MINUTES=7.5 OUT=$OUT scripts/gpu_continue.sh
# UNTIL=STEP stops at that step (the control matching GAACNN's GPU stretch step for step: `trunks list`
# prints each trunk's steps per batch).
# Both trunks in one session: the data and one trunk fill the 64 MiB, so make two calls back to back, the
# first carrying .whl .pack .trunk (NAME=mshp-N64M96-mse-0.013 UNTIL=...), the second carrying only .trunk
# with the other trunk in it: a warm machine keeps the ignored .pack and .whl between calls (it goes back
# after 30 s idle; then the second call stops at once, below, and costs only its start).
# Rehearsed here on the CPU: DEVICE=cpu PY=.venv/bin/python MINUTES=0.5 SNAP_EVERY=10 OUT=/tmp/out ...
set -euo pipefail
NAME=${NAME:-gaacnn-small-mse-0.013}  # or mshp-N64M96-mse-0.013 (not both in one call: see above)
MINUTES=${MINUTES:-7.5}
SNAP_EVERY=${SNAP_EVERY:-150}  # seconds between snapshots (at most 3 of them, then the last)
OUT=${OUT:?set OUT to the folder the snapshots go to}
PY=${PY:-python3}
mkdir -p "$OUT"
[ -f .pack/cid22-train/pixels.json ] && [ -f ".trunk/$NAME/checkpoint.pt.xz" ] || {
  echo "missing .pack or .trunk/$NAME: carry them (the machine went back and came up bare?)"; exit 3; }

if ! $PY -c "import compressai, pytorch_msssim" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 GAACNN_PACK=$PWD/.pack

mkdir -p "trunks/$NAME"
xz -dc ".trunk/$NAME/checkpoint.pt.xz" > "trunks/$NAME/checkpoint.pt"
cp .trunk/$NAME/*.csv .trunk/$NAME/config.json "trunks/$NAME/"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

snapshot() {  # the trunk's checkpoint as it stands, compacted, into OUT (named by its step)
  $PY - "$1" "$NAME" <<'EOF'
import sys, torch
from gaacnn import trunks
run = trunks.ROOT / trunks.TRUNKS[sys.argv[2]].out
state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
torch.save(trunks.compact(state), f"{sys.argv[1]}/{sys.argv[2]}-{state['step']}.pt")
print(f"snapshot at step {state['step']}", flush=True)
EOF
  cp "runs/trunk/$NAME/train.csv" "$OUT/train.csv"
}

$PY -m gaacnn.trunks grow "$NAME" --gpu --device "${DEVICE:-cuda}" --minutes "$MINUTES" ${LR:+--lr $LR} ${UNTIL:+--until $UNTIL} > "$OUT/grow.log" 2>&1 &
GROW=$!
for _ in 1 2 3; do
  for _ in $(seq "$SNAP_EVERY"); do kill -0 $GROW 2>/dev/null || break 2; sleep 1; done
  snapshot "$OUT" || true
done
wait $GROW || { echo "grow failed:"; tail -20 "$OUT/grow.log"; }
snapshot "$OUT"
tr '\r' '\n' < "$OUT/grow.log" | grep -v '^$' | tail -5
ls -la "$OUT"
