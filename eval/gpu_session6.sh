# The GPU runs of session 6, on one H200. Each step is one device call:
#   bash eval/gpu_session6.sh mplug   carry .whl_score (av, decord): the mPLUG-Owl2 7B shape (Q-Align, OneAlign)
#                                     scoring 1280x720 videos at fps:1, frame mode then clip mode (Q-Align's
#                                     video mode): model-only ceiling with the vision tower's share, end to end,
#                                     and where end-to-end time goes
#   bash eval/gpu_session6.sh trace   carry .whl_score: why mPLUG end to end is below its ceiling: a GPU+host
#                                     trace of frame mode, then end to end at batch 128 and with 6 decode workers
#   bash eval/gpu_session6.sh nosync  carry .whl_score: frame mode again, eager and with the LM compiled, run at
#                                     cecf99d, whose forward checked the visual-token count on the GPU (no host
#                                     sync); it gained nothing and was reverted
#   bash eval/gpu_session6.sh norm    carry .whl_score: the mplug step's rows again after the multiway norm was made
#                                     to normalise once (fewer kernels per layer)
#   bash eval/gpu_session6.sh qlora   carry .whl_train (bitsandbytes, datasets, dill, multiprocess, xxhash):
#                                     the QLoRA GPU tests, LLaVA and mPLUG-Owl2
# The wheels: `pip download --no-deps --only-binary=:all: --python-version 3.12 ...` (see the device README).
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
WHL=.whl_score; [ "$1" = qlora ] && WHL=.whl_train
B="python3 eval/bench_score.py --family mplug_owl2 --work /tmp/bench"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $WHL/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
python3 -c "import transformers; print('transformers', transformers.__version__)"
if [ "$1" = mplug ]; then
  timeout 330 $B --mode frame --videos 96 --batch-size 64 --workers 14 --rows ceiling e2e profile timeline_cpu \
    --ceiling-batches 32 64 128 --record $OUT/score_mplug_frame.json > $OUT/mplug_frame.log 2>&1
  grep -v "it/s" $OUT/mplug_frame.log | tail -n 14
  timeout 200 $B --mode clip --videos 96 --batch-size 8 --workers 14 --rows ceiling e2e --ceiling-batches 4 8 16 \
    --record $OUT/score_mplug_clip.json > $OUT/mplug_clip.log 2>&1; grep -v "it/s" $OUT/mplug_clip.log | tail -n 8
elif [ "$1" = norm ]; then
  timeout 200 $B --mode frame --videos 96 --batch-size 64 --workers 14 --rows ceiling e2e --ceiling-batches 64 128 \
    --record $OUT/score_mplug_frame.json > $OUT/norm_frame.log 2>&1; grep -v "it/s" $OUT/norm_frame.log | tail -n 6
  timeout 150 $B --mode clip --videos 96 --batch-size 8 --workers 14 --rows ceiling e2e --ceiling-batches 8 16 \
    --record $OUT/score_mplug_clip.json > $OUT/norm_clip.log 2>&1; grep -v "it/s" $OUT/norm_clip.log | tail -n 6
elif [ "$1" = trace ]; then
  timeout 200 $B --videos 48 --batch-size 64 --workers 14 --rows timeline_cpu --record $OUT/mplug_timeline.json > $OUT/trace.log 2>&1
  timeout 120 $B --videos 48 --batch-size 128 --workers 14 --rows e2e --record $OUT/mplug_b128.json >> $OUT/trace.log 2>&1
  timeout 120 $B --videos 48 --batch-size 64 --workers 6 --rows e2e --record $OUT/mplug_w6.json >> $OUT/trace.log 2>&1
  grep -v "it/s" $OUT/trace.log | tail -n 14
elif [ "$1" = nosync ]; then
  timeout 400 $B --mode frame --videos 96 --batch-size 64 --workers 14 --rows ceiling e2e e2e_compiled \
    --ceiling-batches 64 128 --record $OUT/score_mplug_frame_nosync.json > $OUT/nosync.log 2>&1
  grep -v "it/s" $OUT/nosync.log | tail -n 9
elif [ "$1" = qlora ]; then
  timeout 300 python3 eval/gpu_tests.py --record $OUT/gpu_tests.json > $OUT/gpu_tests.log 2>&1; tail -n 6 $OUT/gpu_tests.log
fi
