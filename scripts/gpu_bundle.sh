#!/usr/bin/env bash
# Prepare, here, what scripts/gpu_continue.sh needs on a GPU machine that reaches no network and takes a
# 64 MiB working tree (tracked files included: `aside` below takes the weights, figures and the rest away).
# Leaves three folders that git ignores (.gitignore) and the device tool carries (name them in `carry`):
#   .whl   compressai and pytorch-msssim for that machine's Python 3.12;
#   .pack  CID22 train as lossless WebP + pixel digests (PNG 72 MB -> WebP about 56 MB);
#   .trunk the GAACNN trunk's compact checkpoint, xz-compressed, and its logs.
#   scripts/gpu_bundle.sh aside   # before the device call: tracked files no run needs go into a tar in /tmp
#   scripts/gpu_bundle.sh back    # after it: they come back (git status is then as before)
# Both trunks in one session (scripts/gpu_continue.sh says why two calls): run this once per NAME; before
# the first call move the second trunk's folder out of .trunk (the data and one trunk fill the 64 MiB),
# after it move it back; the second call carries .trunk alone.
set -euo pipefail
ASIDE=${ASIDE:-/tmp/gaacnn-aside.tar}
KEEP='^(gaacnn|data|scripts)/|^(Makefile|pyproject.toml|requirements.txt|\.gitignore)$'
if [ "${1:-}" = aside ]; then
  git ls-files | grep -v -E "$KEEP" > "$ASIDE.list"
  tar cf "$ASIDE" -T "$ASIDE.list" && xargs -a "$ASIDE.list" rm -f
  { git ls-files; echo .whl; echo .pack; echo .trunk; } | xargs du -cb 2>/dev/null | tail -1 | \
    sed 's/total/bytes travel (the limit: 67108864)/' || true
  exit
elif [ "${1:-}" = back ]; then
  tar xf "$ASIDE" && rm "$ASIDE" "$ASIDE.list" && git status --short
  exit
fi
NAME=${NAME:-gaacnn-small-mse-0.013}  # or mshp-N64M96-mse-0.013
PY=${PY:-.venv/bin/python}

mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 -d .whl compressai==1.2.8
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl pytorch-msssim==1.0.0

[ -f .pack/cid22-train/pixels.json ] || $PY -c "from gaacnn import data; data.pack('cid22-train', '.pack')"

$PY -m gaacnn.trunks store "$NAME"
mkdir -p ".trunk/$NAME"
# Adam's first moments are sent as zeros (xz then takes them to nothing): with them the tree is 69.6 MB,
# over the 64 MiB (67.1 MB). They have a 10-step memory (beta1 0.9) and the continuation re-warms its
# learning rate from zero over 300 steps, so they are rebuilt long before the steps are large; the
# second moments (a 1,000-step memory) travel as they are.
$PY - "trunks/$NAME/checkpoint.pt" <<'PYEOF'
import sys, torch
state = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
for moments in state["opt"]["state"].values():
    moments["exp_avg"].zero_()
torch.save(state, sys.argv[1])
PYEOF
xz -9 -T2 -c "trunks/$NAME/checkpoint.pt" > ".trunk/$NAME/checkpoint.pt.xz"
cp trunks/$NAME/*.csv "trunks/$NAME/config.json" ".trunk/$NAME/"
rm -r "trunks/$NAME"
du -sh .whl .pack .trunk
