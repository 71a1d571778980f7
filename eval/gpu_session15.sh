# GPU steps of session 15, one H100 or H200; each step is one device call (the machine keeps nothing between calls).
#   WHL=.whl_gpu14 bash eval/gpu_session15.sh speed   carry .whl_gpu14 (av, torchao 0.17.0, decord 0.6.0): issue 16.
#       Compiled vs eager scoring on trained weights (the shipped demo model, 25 graded 1280x720 clips); the
#       LLaVA-1.5-7B shape end to end on 120 videos (eager, compiled, fp8 compiled; decord decoding), fp8 compiled
#       again at batch 64; the mPLUG-Owl2 7B shape (frame mode) eager, compiled and fp8 compiled; Qwen2-VL-7B
#       compiled if time is left. Each step is cut at what is left of CALL_LIMIT (default 585 s).
#   bash eval/gpu_session15.sh demo   carry .whl_demo: issue 15, the demo model trained on more content (below).
# Results land in $OUT; copy the result files into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
LIMIT=${CALL_LIMIT:-585}
left() { echo $(( LIMIT - SECONDS - ${1:-0} )); }  # seconds left in the call, less a reserve
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHL:-.whl_demo}/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
nvidia-smi --query-gpu=name --format=csv,noheader
if [ "$1" = speed ]; then
  python3 -c "import timm; print('timm', timm.__version__)"
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  $S data/gl --variant local --sources 24 --size 1280x720 2>&1 | grep -v "video/s"
  timeout $(left 480) python3 eval/compile_agreement.py data/gl/test --device cuda --dtype bf16 --limit 25 \
    --record $OUT/compile_agreement_regional_cuda.json 2>&1 | tail -n 4
  echo "agreement ended at $SECONDS s"
  B="python3 eval/bench_score.py --work /tmp/bench --workers 14"
  timeout $(left 190) $B --videos 120 --batch-size 32 --rows e2e e2e_compiled e2e_fp8_compiled \
    --record $OUT/score_llava_120.json 2>&1 | grep -v Warning | tail -n 12
  echo "llava ended at $SECONDS s"
  timeout $(left 140) $B --videos 120 --batch-size 64 --ceiling-batches 64 --rows e2e_fp8_compiled ceiling_fp8_compiled \
    --record $OUT/score_fp8_b64.json 2>&1 | grep -v Warning | tail -n 8
  echo "fp8 batch 64 ended at $SECONDS s"
  rm -rf /tmp/bench/llava_7b_random
  timeout $(left 10) $B --family mplug_owl2 --mode frame --videos 96 --batch-size 64 \
    --rows e2e e2e_compiled e2e_fp8_compiled --record $OUT/score_mplug_compiled.json 2>&1 | grep -v Warning | tail -n 8
  echo "mplug ended at $SECONDS s"
fi
