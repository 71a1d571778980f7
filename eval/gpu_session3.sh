# The GPU runs behind docs/benchmarks.md (session 3), on a 2 x H200 machine (32 cores).
#   bash eval/gpu_session3.sh 1   HIVE ablation on GPU 1 (cores 16-31) while the scoring benchmark
#                                 runs on GPU 0 (cores 0-15, as many as the one-GPU machine has)
#   bash eval/gpu_session3.sh 2   --devices scaling, 1 vs 2 GPUs, the machine to itself
#   bash eval/gpu_session3.sh 3   after the in-flight batch change: GPU tests, benchmark, scaling
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
A=""; B=""; if command -v taskset >/dev/null; then A="taskset -c 16-31"; B="taskset -c 0-15"; fi
if [ "$1" = 1 ]; then
  ($A env CUDA_VISIBLE_DEVICES=1 timeout 540 python3 eval/hive_ablation.py --data /tmp/hd \
     --base lmm_vqa/demo_model --work /tmp/abl --sources 40 --epochs 3 --parallel \
     --train batch_size=32 num_workers=3 eval_batch_size=64 lr=5e-4 gradient_checkpointing=false \
     > $OUT/ablation.log 2>&1
   cp /tmp/abl/ablation.json /tmp/abl/ablation_hist.png /tmp/abl/*.log $OUT/ 2>/dev/null
   for d in /tmp/abl/*/; do [ -f $d/train_result.json ] && cp $d/train_result.json $OUT/result_$(basename $d).json; done) &
  $B env CUDA_VISIBLE_DEVICES=0 timeout 540 python3 eval/bench_score.py --work /tmp/bench --videos 24 \
     --rows ceiling profile e2e naive hive --json $OUT/bench.json > $OUT/bench.log 2>&1
  wait
  tail -n 25 $OUT/bench.log; tail -n 12 $OUT/ablation.log
elif [ "$1" = 2 ]; then
  timeout 560 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows e2e scaling --scaling-videos 96 \
     --json $OUT/bench_scaling.json > $OUT/bench_scaling.log 2>&1
  tail -n 12 $OUT/bench_scaling.log
fi
# (3) after keeping one batch in flight: the CUDA path of the scoring tests, then the benchmark again
if [ "$1" = 3 ]; then
  python3 -c "import sys; sys.path.insert(0, 'eval'); import bench_score as b; from pathlib import Path; b.prepare(Path('/tmp/bench'), 96)" \
    > $OUT/prepare.log 2>&1 &
  LMM_VQA_TEST_DTYPE=fp32 timeout 120 python3 -m pytest -q -x -p no:cacheprovider tests/test_scoring.py tests/test_hive.py \
    > $OUT/pytest_gpu.log 2>&1; tail -n 3 $OUT/pytest_gpu.log
  timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_scoring.py -k "in_flight or batch_size" \
    > $OUT/pytest_gpu_bf16.log 2>&1; tail -n 3 $OUT/pytest_gpu_bf16.log
  wait
  $B env CUDA_VISIBLE_DEVICES=0 timeout 240 python3 eval/bench_score.py --work /tmp/bench --videos 24 \
     --rows ceiling profile e2e e2e_serial hive --json $OUT/bench3.json > $OUT/bench3.log 2>&1
  tail -n 12 $OUT/bench3.log
  timeout 150 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows scaling --scaling-videos 96 \
     --json $OUT/bench3_scaling.json > $OUT/bench3_scaling.log 2>&1
  tail -n 3 $OUT/bench3_scaling.log
fi
# (4) one H200 (16 cores), at commit 7ec99e4 (decoding in processes, the default on a GPU there):
#     processes 21.1 frames/s against threads 44.3, so that commit was reverted. To repeat it:
#     git checkout 7ec99e4 && python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e e2e_threads profile hive
# (5) one H200: a CUDA trace of end-to-end scoring (threads, one batch in flight): GPU busy share and idle gaps
if [ "$1" = 5 ]; then
  timeout 500 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e timeline \
     --json $OUT/bench5.json > $OUT/bench5.log 2>&1
  tail -n 8 $OUT/bench5.log
fi
# (6) one H200: the same after rendering the prompt once per image count, with a host+GPU trace
if [ "$1" = 6 ]; then
  timeout 280 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows e2e timeline timeline_cpu \
     --json $OUT/bench6.json > $OUT/bench6.log 2>&1
  tail -n 8 $OUT/bench6.log
fi
# (7) one H200: frames uploaded as they are and made channel-first on the GPU (scoring.chw_tensors)
if [ "$1" = 7 ]; then
  timeout 70 python3 -m pytest -q -p no:cacheprovider tests/test_scoring.py -k "in_flight or batch_size" \
    > $OUT/pytest_gpu7.log 2>&1; tail -n 2 $OUT/pytest_gpu7.log
  timeout 220 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e timeline_cpu \
     --json $OUT/bench7.json > $OUT/bench7.log 2>&1
  tail -n 8 $OUT/bench7.log
fi
