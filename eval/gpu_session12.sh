# GPU steps of session 12, one H100 or H200; each step is one device call:
#   bash eval/gpu_session12.sh demo      carry .whl_demo (av, datasets, dill, multiprocess, xxhash, timm): issue 15's
#                                       demo model, FastVLM format, now with a 448 px input (one visual token per
#                                       64 px: 7x7), batch 128 and as many epochs as fit the time: the keyframes are
#                                       decoded once (frame_cache) and a short timing run sets the epoch count so the
#                                       cosine schedule ends in the time left (the call's CALL_LIMIT, default 585 s,
#                                       less RESERVE, default 90 s, for scoring and export). Same graded data and
#                                       test splits as session 11. Scores the test splits, checks them, exports.
#   bash eval/gpu_session12.sh ablation  right after `demo`, on the same machine: issue 15's HIVE ablation, local-detail
#                                       variant, 3 seeds, on the model `demo` trained (runs/demo_export), or on
#                                       ABL_BASE (e.g. lmm_vqa/demo_model, the shipped one). On an H100 the data took
#                                       56 s and one seed's five trainings, two fusions and five scorings about 190 s,
#                                       so three seeds need two calls on the same warm machine: each finished seed is
#                                       kept (runs/ablation_local/seedN/results.json) and the second call goes on
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl_demo/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
python3 -c "import transformers, timm; print('transformers', transformers.__version__, 'timm', timm.__version__)" || exit
nvidia-smi --query-gpu=name --format=csv,noheader
T="python3 -m lmm_vqa.cli train train/configs/demo_model.yaml model=data/demo_base448 frame_cache=data/frame_cache \
   batch_size=${BATCH:-128} lr=${LR:-1e-3} val_limit=${VAL_LIMIT:-400} log_every=10"
if [ "$1" = demo ]; then
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  start=$(date +%s)
  ($S data/g224 --sources 240 --size 224x128 && $S data/g448 --sources 96 --size 448x256 --seed 1) 2>&1 | grep -v "video/s" || exit
  echo "synth took $(( $(date +%s) - start )) s"
  python3 eval/build_demo_base.py data/demo_base448 --family fast_vlm --side 448 || exit
  # timing run: fills the frame cache, 30 steps, one validation; its log gives seconds per step and per validation
  start=$(date +%s)
  $T output_dir=runs/probe max_steps=30 > $OUT/probe.log 2>&1 || { tail -n 30 $OUT/probe.log; exit 1; }
  echo "probe took $(( $(date +%s) - start )) s"; cp runs/probe/log.jsonl $OUT/probe_log.jsonl
  EPOCHS=$(python3 - <<PY
import json
rows = [json.loads(l) for l in open("runs/probe/log.jsonl")]
steps = [r for r in rows if "loss" in r]
step_s = (steps[-1]["seconds"] - steps[0]["seconds"]) / (steps[-1]["step"] - steps[0]["step"])
val_s = [r for r in rows if "val_n" in r][-1]["seconds"] - steps[-1]["seconds"]
per_epoch = sum(1 for _ in open("data/g224/train/labels.txt")) + sum(1 for _ in open("data/g448/train/labels.txt"))
per_epoch //= ${BATCH:-128}
budget = ${CALL_LIMIT:-585} - ${RESERVE:-90} - $SECONDS - 25  # 25 s: loading the model again
epochs = int(budget / (per_epoch * step_s + val_s))
print(max(2, epochs))
import sys; print(f"{budget} s left to train; step {step_s * 1000:.0f} ms, validation {val_s:.1f} s, {per_epoch} steps/epoch -> {epochs} epochs", file=sys.stderr)
PY
)
  timeout $(( ${CALL_LIMIT:-585} - ${RESERVE:-90} - SECONDS )) $T epochs=$EPOCHS > $OUT/train.log 2>&1
  echo "training ended at $SECONDS s"
  grep -v "it/s" $OUT/train.log | grep "epoch\|best" | tail -n 40; cp runs/demo_model/log.jsonl $OUT/; cp runs/demo_model/curve.png $OUT/
  for d in g224 g448; do
    python3 -m lmm_vqa.cli score data/$d/test --model runs/demo_model --out $OUT/pred_$d.csv --quiet --batch-size 256 --workers 14
    python3 eval/graded_check.py $OUT/pred_$d.csv --labels data/$d/test/labels.txt --record $OUT/demo_graded_$d.json
  done
  python3 eval/export_demo_model.py runs/demo_model runs/demo_export
  cp -r runs/demo_export $OUT/demo_model
  # the device returns only a few files: the model, the logs and the predictions travel as one archive
  (cd $OUT && tar -czf demo_bundle.tgz demo_model train.log probe.log pred_* && rm -rf demo_model train.log probe.log pred_*)
fi
if [ "$1" = ablation ]; then
  [ -f ${ABL_BASE:-runs/demo_export}/config.json ] || { echo "run the demo step first, on this machine"; exit 3; }
  timeout ${ABL_LIMIT:-540} python3 eval/hive_ablation.py --variant local --seeds 0 1 2 --sources 24 --epochs 3 \
    --base ${ABL_BASE:-runs/demo_export} --parallel --train batch_size=32 num_workers=3 eval_batch_size=64 lr=5e-4 \
    gradient_checkpointing=false --record $OUT/hive_ablation_local.json > $OUT/ablation.log 2>&1
  grep -v "it/s" $OUT/ablation.log | tail -n 16; cp runs/ablation_local/*.png $OUT/ 2>/dev/null
fi
