# The GPU runs of session 8, on one H200; each step is one device call carrying .whl_gpu8 (cp312 wheels: av,
# torchao 0.17, fla-core and flash-linear-attention 0.6, einops):
#   bash eval/gpu_session8.sh qwen2vl  the GPU test of --dtype fp8 (tests/test_gpu.py -k fp8); then the Qwen2-VL-7B
#                                      shape (about 1200 visual tokens a 720p frame): model only, end to end in bf16,
#                                      fp8 eager and fp8 compiled, each with its score difference
#   bash eval/gpu_session8.sh qwen35   Q-ReAlign's shapes scored as its presets score (8 frames a video, 448 px long
#                                      side, one prompt): Qwen3.5-0.8B (Mini) and -9B (Pro), model only and end to end,
#                                      with flash-linear-attention's kernels; the 0.8B model only also without them
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl_gpu8/*.whl | grep -v -e fla_core -e flash_linear) || exit
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/fla \
  .whl_gpu8/fla_core-*.whl .whl_gpu8/flash_linear_attention-*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
python3 -c "import transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__)"
if [ "$1" = qwen2vl ]; then
  timeout 120 python3 eval/gpu_tests.py --record $OUT/gpu_tests_fp8.json tests/test_gpu.py -k fp8 2>&1 | tail -n 6
  timeout 520 python3 eval/bench_score.py --family qwen2_vl --videos 16 --batch-size 8 --workers 14 \
    --ceiling-batches 8 16 --rows ceiling e2e e2e_fp8 e2e_fp8_compiled --record $OUT/score_qwen2_vl.json \
    > $OUT/qwen2vl.log 2>&1
  grep -v "it/s" $OUT/qwen2vl.log | tail -n 14
elif [ "$1" = qwen35 ]; then
  B="python3 eval/bench_score.py --videos 24 --batch-size 4 --workers 14 --ceiling-batches 2 4 8"
  PYTHONPATH=/tmp/site:/tmp/fla timeout 200 $B --family qwen3_5_0.8b --preset q-realign-mini --rows ceiling e2e \
    --record $OUT/score_qwen3_5_0.8b.json > $OUT/q08.log 2>&1
  grep -v "it/s" $OUT/q08.log | tail -n 8
  timeout 100 $B --family qwen3_5_0.8b --preset q-realign-mini --rows ceiling \
    --record $OUT/score_qwen3_5_0.8b_torch.json > $OUT/q08_torch.log 2>&1
  grep -v "it/s" $OUT/q08_torch.log | tail -n 5
  PYTHONPATH=/tmp/site:/tmp/fla timeout 270 $B --family qwen3_5_9b --preset q-realign-pro --rows ceiling e2e \
    --record $OUT/score_qwen3_5_9b.json > $OUT/q9.log 2>&1
  grep -v "it/s" $OUT/q9.log | tail -n 8
fi
