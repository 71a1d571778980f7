# GPU steps of session 13, one H100 or H200; each step is one device call, carry .whl_demo (av, datasets, dill,
# multiprocess, xxhash, timm):
#   bash eval/gpu_session13.sh ablation VARIANT   issue 15's HIVE ablation (local | clustered), 3 seeds, on the
#                                                shipped demo model, the dual encoder's fusion starting with its
#                                                output projection at zero (lmm_vqa/dual.py). The machine forgets
#                                                everything between calls, so the data is made again (the same
#                                                files: synth is seeded) and the seeds finished in an earlier call
#                                                come back in runs/ablation_VARIANT (carry it): their results.json
#                                                and training logs are all the ablation reads of them.
# Results land in $OUT (abl_VARIANT.tgz: every seed's results, logs and predictions); unpack it into the working
# tree, copy the result file into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl_demo/*.whl || exit
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
