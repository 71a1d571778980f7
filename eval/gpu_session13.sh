# GPU steps of session 13, one H100 or H200; each step is one device call. Carry the wheels named by WHL:
# .whl_demo (av, datasets, dill, multiprocess, xxhash, timm; the default) or, for `speed`, .whl_gpu13 (av, torchao
# 0.17.0):
#   bash eval/gpu_session13.sh ablation VARIANT   issue 15's HIVE ablation (local | clustered), 3 seeds, on the
#                                                shipped demo model, the dual encoder's fusion starting with its
#                                                output projection at zero (lmm_vqa/dual.py). The machine forgets
#                                                everything between calls, so the data is made again (the same
#                                                files: synth is seeded) and the seeds finished in an earlier call
#                                                come back in runs/ablation_VARIANT (carry it): their results.json
#                                                and training logs are all the ablation reads of them.
#   WHL=.whl_gpu13 bash eval/gpu_session13.sh speed   issue 16: the ways to compile the language model
#                                                (eval/compile_probe.py), then end to end with the default
#                                                (layer by layer) and fp8 (session 13 ran the two as separate calls).
# Results land in $OUT (abl_VARIANT.tgz: every seed's results, logs and predictions); unpack it into the working
# tree, copy the result file into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHL:-.whl_demo}/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
nvidia-smi --query-gpu=name --format=csv,noheader
if [ "$1" = ablation ]; then
  V=${2:-local}
  case $V in local) SRC=${SOURCES:-24};; clustered) SRC=${SOURCES:-6};; *) echo "variant: local | clustered"; exit 2;; esac
  timeout $(( ${CALL_LIMIT:-585} - 25 - SECONDS )) python3 eval/hive_ablation.py --variant $V --seeds 0 1 2 \
    --sources $SRC --epochs ${EPOCHS:-4} --base lmm_vqa/demo_model --parallel --workers 16 --work runs/ablation_$V \
    --data data/graded_$V --train batch_size=8 num_workers=2 eval_batch_size=64 lr=5e-4 gradient_checkpointing=false \
    --record $OUT/hive_ablation_$V.json > $OUT/ablation_$V.log 2>&1
  echo "ablation ended at $SECONDS s"
  grep -v "it/s\|video/s" $OUT/ablation_$V.log | tail -n 16; cp runs/ablation_$V/*.png $OUT/ 2>/dev/null
  tar -czf $OUT/abl_$V.tgz $(ls runs/ablation_$V/seed*/results.json runs/ablation_$V/seed*/*/log.jsonl \
    runs/ablation_$V/seed*/*/hive.json runs/ablation_$V/seed*/*.csv runs/ablation_$V/seed*/*.log 2>/dev/null)
fi
if [ "$1" = speed ]; then
  timeout 520 python3 eval/compile_probe.py --work /tmp/bench --variants eager regional_dynamic whole_static \
    whole_dynamic --record $OUT/compile_probe.json 2>&1 | grep -v Warning | tail -n 12
  timeout 315 python3 eval/bench_score.py --videos 48 --batch-size 32 --workers 14 --ceiling-batches 32 \
    --rows e2e e2e_compiled ceiling_compiled e2e_fp8_compiled --record $OUT/score_regional.json 2>&1 | tail -n 12
fi
