# GPU steps of session 14, one H100 or H200; each step is one device call (the machine keeps nothing between calls).
#   bash eval/gpu_session14.sh demo   carry .whl_demo (av, datasets, dill, multiprocess, xxhash, timm): issue 15's demo
#                                     model trained further. The graded data of sessions 11-12 is made again (synth is
#                                     seeded: the same files and splits); training starts from FROM (default: the
#                                     shipped demo model, lmm_vqa/demo_model) at LR (default 5e-4), validating every
#                                     second epoch, for as many epochs as fit the call (CALL_LIMIT, default 585 s, less
#                                     RESERVE, 90 s, for scoring and export). With PROBE=1 (the default) two 20-step
#                                     timing runs first compare the images prepared in the loader's workers with the
#                                     new default (uint8 frames, the processor run on the GPU) and the second's step
#                                     time sets the epoch count; with PROBE=0, STEP_MS gives the step time. Scores the
#                                     test splits, checks them, exports (fp16, the shipped format) into demo.tgz,
#                                     which a second call can carry as FROM (runs/carry).
#   WHL=.whl_gpu14 bash eval/gpu_session14.sh speed   carry .whl_gpu14 (av, torchao 0.17.0, decord): issue 16 on
#                                     the LLaVA-1.5-7B shape, end to end with 120 videos (eager, compiled, fp8
#                                     compiled), and compiled vs eager on trained weights (the demo model).
# Results land in $OUT; copy the result files into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHL:-.whl_demo}/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
nvidia-smi --query-gpu=name --format=csv,noheader
if [ "$1" = demo ]; then
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  ($S data/g224 --sources 240 --size 224x128 && $S data/g448 --sources 96 --size 448x256 --seed 1) 2>&1 | grep -v "video/s" || exit
  echo "synth ended at $SECONDS s"
  T="python3 -m lmm_vqa.cli train train/configs/demo_model.yaml frame_cache=data/frame_cache batch_size=128 log_every=10"
  FROM=${FROM:-lmm_vqa/demo_model}
  if [ "${PROBE:-1}" = 1 ]; then
    for prep in workers auto; do  # the first fills the frame cache
      $T model=$FROM output_dir=runs/probe_$prep max_steps=20 val_labels=null time_steps=true preprocess=$prep \
        > $OUT/probe_$prep.log 2>&1 || { tail -n 30 $OUT/probe_$prep.log; exit 1; }
      grep '"step": 20' runs/probe_$prep/log.jsonl | head -n 1
    done
    STEP_MS=$(python3 -c "
import json; r = [json.loads(l) for l in open('runs/probe_auto/log.jsonl')]; r = {x['step']: x for x in r if 'loss' in x}
print(round(1000 * (r[20]['seconds'] - r[10]['seconds']) / 10))")
    echo "probes ended at $SECONDS s; step ${STEP_MS} ms"
    CACHE_S=0
  fi
  EPOCHS=$(python3 -c "
steps = (sum(1 for _ in open('data/g224/train/labels.txt')) + sum(1 for _ in open('data/g448/train/labels.txt'))) // 128
budget = ${CALL_LIMIT:-585} - ${RESERVE:-90} - $SECONDS - 25 - ${CACHE_S:-25}  # loading the model; filling the cache
epoch_s = steps * ${STEP_MS:-235} / 1000 + 6.5 / 2  # a validation (400 videos) every second epoch
print(max(2, int(budget / epoch_s)))")
  echo "training $EPOCHS epochs"
  timeout $(( ${CALL_LIMIT:-585} - ${RESERVE:-90} - SECONDS )) $T model=$FROM output_dir=runs/demo_model \
    epochs=$EPOCHS lr=${LR:-5e-4} val_limit=400 val_every=2 > $OUT/train.log 2>&1
  echo "training ended at $SECONDS s"
  grep -v "it/s" $OUT/train.log | grep "epoch\|best" | tail -n 30; cp runs/demo_model/log.jsonl $OUT/
  for d in g224 g448; do
    python3 -m lmm_vqa.cli score data/$d/test --model runs/demo_model --out runs/pred_$d.csv --quiet --batch-size 256 --workers 14
    python3 eval/graded_check.py runs/pred_$d.csv --labels data/$d/test/labels.txt --record $OUT/demo_graded_$d.json
  done
  python3 eval/export_demo_model.py runs/demo_model runs/demo_export
  # the device returns only a few files: the model, the logs and the predictions travel as one archive
  cp $OUT/probe_*.log $OUT/train.log runs/ 2>/dev/null; rm -f $OUT/*.log
  tar -czf $OUT/demo.tgz -C runs demo_export train.log $(cd runs && ls probe_*.log pred_*.csv 2>/dev/null)
  echo "done at $SECONDS s"
fi
if [ "$1" = speed ]; then
  timeout 330 python3 eval/bench_score.py --videos 120 --batch-size 32 --workers 14 \
    --rows e2e e2e_compiled e2e_fp8_compiled --record $OUT/score_h200.json 2>&1 | grep -v Warning | tail -n 14
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  $S data/gl --variant local --sources 24 --size 1280x720 2>&1 | grep -v "video/s"
  python3 eval/compile_agreement.py data/gl/test --device cuda --dtype bf16 --limit 25 \
    --record $OUT/compile_agreement_regional_cuda.json 2>&1 | tail -n 4
fi
