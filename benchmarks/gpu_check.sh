#!/usr/bin/env bash
# The GPU run (issue 17): on a machine with a CUDA GPU and nothing else reachable, in the project's root, with the
# kit of scripts/gpu_kit.py beside it:
#
#   python scripts/gpu_kit.py --data ../shared/data --out gpu-kit --wheels      # here, once (about 45 MiB)
#   bash benchmarks/gpu_check.sh                                                 # there (device run: carry gpu-kit)
#   bash benchmarks/gpu_check.sh --smoke                                         # anywhere, CPU too: the path only
#
# Steps, all logged to $OUT/gpu_check.log ($OUT: the device run's output folder, else gpu-out/):
#   1. the kit's wheels into /tmp/gruasr-site when the image lacks them; gruasr from src/ (no install);
#   2. the CUDA tests (parity of both GRU backends with torch.nn.GRU on the GPU, CPU = GPU log-probs, the bundled
#      models on the GPU);
#   3. the corpora: AN4 from the kit, FSDD digits -> phone numbers (`gruasr data fsdd`), non-speech clips;
#   4. training throughput (benchmarks/train_speed.py): GRU reference and fused, minGRU, fp32 and bf16 autocast;
#   5. the large preset (configs/size-l.toml) trained on it all, EPOCHS epochs (default the recipe's 40);
#   6. its greedy WER on AN4 test through the mu-law line and on FSDD test phone numbers.
# Results: $OUT/results.json (throughput rows, the run's summary, the WERs), $OUT/model.tar.gz (the trained
# model folder), the log. --smoke: a tiny model, a few utterances, 1 epoch, 1 timed step.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${KIT:-gpu-kit}
OUTDIR=${OUT:-gpu-out}
PY=${PYTHON:-python3}
EPOCHS=${EPOCHS:-40}
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
[ -d "$KIT/an4" ] && [ -d "$KIT/fsdd" ] || { echo "no kit in $KIT: run scripts/gpu_kit.py first" >&2; exit 2; }
mkdir -p "$OUTDIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

if ! $PY -c "import soundfile, soxr, webrtcvad, kaldialign, rapidfuzz" 2>/dev/null; then
  [ -d "$KIT/wheels" ] || { echo "missing Python packages and no $KIT/wheels (gpu_kit.py --wheels)" >&2; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gruasr-site "$KIT"/wheels/*.whl
  export PYTHONPATH=/tmp/gruasr-site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")

if [ $SMOKE = 1 ]; then
  NUMBERS=(--numbers-train 8 --numbers-dev 4 --numbers-test 4)
  NONSPEECH=(--train 8 --dev 4 --test 4)
  SIZE=(--set model.hidden_size=16 --set model.num_layers=1 --set model.conv_channels=16 --set data.limit=12
        --set augment.variants=1 --set train.max_seconds=20.0)
  EPOCHS=1 STEPS=1 UNITS=gru:reference,mingru:scan
else
  NUMBERS=(--numbers-train 800 --numbers-dev 200 --numbers-test 200)
  NONSPEECH=()
  SIZE=(--set train.num_workers=8)
  STEPS=20 UNITS=gru:reference,gru:fused,mingru:scan
fi
DATA=(--set "data.train=[\"$KIT/an4/train.jsonl\", \"$WORK/fsdd/train.jsonl\", \"$WORK/fsdd/train_numbers.jsonl\", \"$WORK/nonspeech/train.jsonl\"]"
      --set "data.dev=[\"$KIT/an4/dev.jsonl\", \"$WORK/fsdd/dev_numbers.jsonl\", \"$WORK/nonspeech/dev.jsonl\"]")

{
  echo "== machine"; nvidia-smi || echo "no nvidia-smi"
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  echo "== CUDA tests"
  $PY -m pytest -q -p no:cacheprovider -m cuda tests/models/test_parity.py tests/recognition/test_api.py \
    || echo "CUDA TESTS FAILED"
  echo "== corpora"
  $PY -m gruasr data fsdd --src "$KIT/fsdd" --out "$WORK/fsdd" "${NUMBERS[@]}"
  $PY -m gruasr data nonspeech --out "$WORK/nonspeech" --crosstalk "$KIT/an4/train.jsonl" "${NONSPEECH[@]}"
  echo "== training throughput"
  $PY benchmarks/train_speed.py --config configs/size-l.toml --steps $STEPS --units $UNITS "${DATA[@]}" "${SIZE[@]}" \
    --out "$WORK/train_speed.json"
  echo "== training configs/size-l.toml, $EPOCHS epochs"
  $PY -m gruasr train --config configs/size-l.toml --out "$WORK/run" "${DATA[@]}" "${SIZE[@]}" --set train.epochs=$EPOCHS
  echo "== test WER (greedy)"
  $PY -m gruasr eval --manifest "$KIT/an4/test.jsonl" --channel ulaw --model "$WORK/run/model" --greedy \
    --out "$WORK/eval-an4" --device $DEVICE
  $PY -m gruasr eval --manifest "$WORK/fsdd/test_numbers.jsonl" --model "$WORK/run/model" --greedy \
    --out "$WORK/eval-numbers" --device $DEVICE
} 2>&1 | tee "$OUTDIR/gpu_check.log"

$PY - "$WORK" "$OUTDIR/results.json" <<'EOF'
import json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
report = {
    "train_speed": json.loads((work / "train_speed.json").read_text()),
    "run": json.loads((work / "run" / "summary.json").read_text()),
    "wer": {name: json.loads((work / f"eval-{name}" / "report.json").read_text()).get("wer")
            for name in ("an4", "numbers")},
}
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"wrote {out}: WER {report['wer']}")
EOF
tar -czf "$OUTDIR/model.tar.gz" -C "$WORK/run" model summary.json
echo "done: $OUTDIR/results.json, $OUTDIR/model.tar.gz, $OUTDIR/gpu_check.log"
