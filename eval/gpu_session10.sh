# GPU steps, one H100 or H200; each step is one device call (session 10 ran `mplug` only; the others are prepared):
#   bash eval/gpu_session10.sh train   carry .whl_train (bitsandbytes, datasets, ...): issue 16's fine-tuning item:
#                                     LoRA bf16 at batch 8 with and without gradient checkpointing (fused AdamW now),
#                                     then where a step's time goes (the recipe's time_steps); loss curves recorded
#   bash eval/gpu_session10.sh mplug  carry .whl_score (av, decord): issue 13's end-to-end target, the mPLUG-Owl2 7B
#                                     shape: ceiling, host syncs, end to end with page-locked frames and without,
#                                     GPU trace; then a shorter GIL switch interval, fewer decode workers; clip mode
#   bash eval/gpu_session10.sh fp8     carry .whl_gpu8: the LLaVA-7B fp8 + compile row again, compile rounding as eager
#   bash eval/gpu_session10.sh probe   carry .whl_gpu8: issue 15's texture probe with far more frames and steps (20000
#                                     noise frames made on 15 processes; DCT and random stems, 4 minutes each)
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
WHL=.whl_gpu8; [ "$1" = train ] && WHL=.whl_train; [ "$1" = mplug ] && WHL=.whl_score
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $WHL/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
if [ "$1" = train ]; then
  timeout ${TRAIN_LIMIT:-560} python3 eval/bench_train_cost.py --work /tmp/cost --steps 16 --batch-size 8 \
    --variants "LoRA bf16" "LoRA bf16, no checkpointing" --time-steps --record $OUT/train_cost_split.json \
    > $OUT/train.log 2>&1
  grep -v "it/s" $OUT/train.log | tail -n 8
elif [ "$1" = mplug ]; then
  M="python3 eval/bench_score.py --family mplug_owl2 --work /tmp/bench --videos 144 --batch-size 64 --workers 14"
  timeout 330 $M --rows ceiling syncs e2e e2e_unpinned timeline --ceiling-batches 64 128 \
    --record $OUT/score_mplug_frame.json > $OUT/mplug_frame.log 2>&1
  timeout 100 $M --mode clip --batch-size 8 --rows ceiling e2e --ceiling-batches 8 16 \
    --record $OUT/score_mplug_clip.json > $OUT/mplug_clip.log 2>&1
  timeout 80 $M --rows e2e --switch-interval 0.0002 --record $OUT/score_mplug_switch.json > $OUT/mplug_switch.log 2>&1
  timeout 80 $M --rows e2e --workers 6 --record $OUT/score_mplug_workers6.json > $OUT/mplug_workers6.log 2>&1
  for f in $OUT/mplug_*.log; do echo "== $f"; grep -v "it/s" $f | tail -n 14; done
elif [ "$1" = probe ]; then
  for arch in dct rand; do
    timeout 280 python3 eval/texture_probe.py --kind noise --arch $arch --train-frames 20000 --workers 15 \
      --seconds 200 --batch-size 128 --device cuda 2>&1 | grep SRCC | tee $OUT/probe_$arch.log | tail -n 4
  done
elif [ "$1" = fp8 ]; then
  timeout 560 python3 eval/bench_score.py --videos 48 --batch-size 32 --workers 14 --rows e2e e2e_fp8_compiled \
    --record $OUT/score_fp8_rounding.json > $OUT/fp8.log 2>&1
  grep -v "it/s" $OUT/fp8.log | tail -n 8
fi
