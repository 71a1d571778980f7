# The GPU runs of session 7, on one H200. Each step is one device call:
#   bash eval/gpu_session7.sh demo    carry .whl_demo (av, datasets, dill, multiprocess): the demo model retrained
#                                     on the graded benchmark (train/configs/demo_model.yaml): synthesise the data
#                                     on the machine's 16 cores, train, score the held-out test splits, check them
#                                     with eval/graded_check.py, export the model to $OUT/demo_model
#   bash eval/gpu_session7.sh speed   carry .whl_speed (av, torchao 0.17, fastapi and opentelemetry-api, uvicorn,
#                                     pydantic, python-multipart, ...): LLaVA-1.5-7B
#                                     shape, bf16 against fp8, eager and compiled, model only and end to end
#   bash eval/gpu_session7.sh serve   carry .whl_speed and .gpu_data: `lmm-vqa serve` under 32 clients with the 7B
#                                     shape; compiled and fp8 scoring against eager bf16 on the bundled demo model
#   bash eval/gpu_session7.sh qwen2vl carry .whl_speed: the Qwen2-VL-7B shape (about 1200 visual tokens a 720p frame),
#                                     bf16 eager and fp8 compiled, model only and end to end (prepared, not yet run)
# The wheels: `pip download --no-deps --only-binary=:all: --python-version 3.12 ...` (see the device README).
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
WHL=.whl_demo; [ "$1" = demo ] || WHL=.whl_speed
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $WHL/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
python3 -c "import transformers; print('transformers', transformers.__version__)"
if [ "$1" = demo ]; then
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  ($S data/g224 --sources 240 --size 224x128 && $S data/g448 --sources 96 --size 448x256 --seed 1) 2>&1 | grep -v "video/s" || exit
  timeout 420 python3 -m lmm_vqa.cli train train/configs/demo_model.yaml > $OUT/train.log 2>&1
  grep -v "it/s" $OUT/train.log | tail -n 12; cp runs/demo_model/log.jsonl runs/demo_model/curve.png $OUT/
  for d in g224 g448; do
    python3 -m lmm_vqa.cli score data/$d/test --model runs/demo_model --out $OUT/pred_$d.csv --quiet --batch-size 256 \
      --workers 14
    python3 eval/graded_check.py $OUT/pred_$d.csv --labels data/$d/test/labels.txt --record $OUT/demo_graded_$d.json
  done
  python3 eval/export_demo_model.py runs/demo_model $OUT/demo_model
  # the device returns only a few files: the model, the log and the predictions travel as one archive
  (cd $OUT && tar -czf demo_bundle.tgz demo_model train.log pred_* && rm -rf demo_model train.log pred_*)
elif [ "$1" = speed ]; then
  timeout 560 python3 eval/bench_score.py --videos 48 --batch-size 32 --workers 14 --ceiling-batches 32 64 \
    --rows ceiling ceiling_fp8 e2e e2e_fp8 e2e_compiled e2e_fp8_compiled \
    --record $OUT/score_fp8.json > $OUT/speed.log 2>&1
  grep -v "it/s" $OUT/speed.log | tail -n 16
elif [ "$1" = qwen2vl ]; then
  timeout 560 python3 eval/bench_score.py --family qwen2_vl --videos 24 --batch-size 8 --workers 14 --ceiling-batches 8 16 \
    --rows ceiling e2e e2e_fp8_compiled --record $OUT/score_qwen2_vl.json > $OUT/qwen2vl.log 2>&1
  grep -v "it/s" $OUT/qwen2vl.log | tail -n 12
elif [ "$1" = serve ]; then
  timeout 130 python3 eval/bench_score.py --videos 8 --rows --record /tmp/none.json > /dev/null 2>&1  # builds the 7B checkpoint
  timeout 220 python3 eval/bench_serve.py --model /tmp/bench/llava_7b_random --device cuda --batch-size 32 \
    --clients 32 --seconds 60 --record $OUT/serve_load_7b.json > $OUT/serve.log 2>&1
  grep -v "it/s" $OUT/serve.log | tail -n 8
  for a in fp8 compile; do
    timeout 100 python3 eval/compile_agreement.py .gpu_data/syn_test --device cuda --against $a \
      --record $OUT/agreement_$a.json 2>&1 | grep -v "it/s" | tail -n 2
  done
fi
