# The GPU runs behind eval/results/*.json (session 4), on one H200. Each step is one device call:
#   bash eval/gpu_session4.sh train   carry .whl_train (bitsandbytes, datasets, dill, multiprocess):
#                                     the QLoRA GPU test, then the 7B fine-tuning cost (LoRA and QLoRA)
#   bash eval/gpu_session4.sh qlora   the QLoRA GPU test alone (carries .whl_train)
#   bash eval/gpu_session4.sh scaling  on 2 H200s (carries .whl_score): --devices, 1 GPU against 2
#   bash eval/gpu_session4.sh compile  (carries .whl_score) eager vs compiled scoring, and the compile cache
#   bash eval/gpu_session4.sh score   carry .whl_score (av, decord): bf16/fp32 agreement on every family,
#                                     then the 7B scoring throughput
# The wheels: `pip download --no-deps --only-binary=:all: --python-version 3.12 ...` (see the device README).
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
WHL=.whl_$1; [ "$1" = qlora ] && WHL=.whl_train; [ "$1" = scaling ] || [ "$1" = compile ] && WHL=.whl_score
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $WHL/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
if [ "$1" = train ]; then
  timeout 150 python3 eval/gpu_tests.py --record $OUT/gpu_tests.json > $OUT/gpu_tests.log 2>&1; tail -n 4 $OUT/gpu_tests.log
  timeout 420 python3 eval/bench_train_cost.py --work /tmp/cost --steps 12 --batch-size 8 \
    --record $OUT/train_cost.json > $OUT/train_cost.log 2>&1; tail -n 6 $OUT/train_cost.log
elif [ "$1" = qlora ]; then  # the QLoRA test again, after fixing its count of 4-bit layers
  timeout 150 python3 eval/gpu_tests.py --record $OUT/gpu_tests.json > $OUT/gpu_tests.log 2>&1; tail -n 4 $OUT/gpu_tests.log
elif [ "$1" = scaling ]; then
  timeout 560 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows scaling --scaling-videos 96 \
    --record $OUT/score_scaling.json > $OUT/scaling.log 2>&1; tail -n 6 $OUT/scaling.log
elif [ "$1" = score ]; then
  timeout 150 python3 eval/bench_dtype.py --work /tmp/dtype --record $OUT/dtype_agreement.json \
    > $OUT/dtype.log 2>&1; tail -n 12 $OUT/dtype.log
  timeout 420 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e naive hive \
    --record $OUT/score_throughput.json > $OUT/score.log 2>&1; tail -n 12 $OUT/score.log
fi
# torch.compile of the language model (lmm_vqa/compilation.py): eager and compiled end to end, scores
# compared; then the CLI twice in fresh processes, to see Inductor's on-disk cache spare the second warm-up.
if [ "$1" = compile ]; then
  timeout 400 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e e2e_compiled \
    --record $OUT/score_compiled.json > $OUT/compiled.log 2>&1; tail -n 9 $OUT/compiled.log
  for run in 1 2; do
    SECONDS=0
    python3 -m lmm_vqa.cli score /tmp/bench/videos/v000.mp4 /tmp/bench/videos/v001.mp4 --model /tmp/bench/llava_7b_random \
      --out /tmp/cache_run$run.csv --quiet --compile on > /dev/null 2>&1
    echo "CLI run $run with --compile on (2 videos, loading included): ${SECONDS} s" | tee -a $OUT/compiled.log
  done
fi
