# GPU steps of session 11, one H100 or H200; each step is one device call:
#   bash eval/gpu_session11.sh demo    carry .whl_demo (av, datasets, dill, multiprocess, xxhash, timm): issue 15's
#                                     demo model in the FastVLM format (FastViT-HD tower, trained from scratch in its
#                                     branched form): synthesise the graded data on the machine's cores, train
#                                     (train/configs/demo_model.yaml), score the held-out test splits, check them
#                                     with eval/graded_check.py, fold and export the model into $OUT/demo_bundle.tgz
#   bash eval/gpu_session11.sh demo2   right after `demo`, on the same machine (its data/ and runs/ still there): five
#                                     more epochs from the best of the first run (its time limit stopped it at epoch 5
#                                     of 8, validation still rising), scored, checked and exported as `demo` does
#   bash eval/gpu_session11.sh ablation  carry .whl_demo: issue 15's HIVE ablation, local-detail variant, 3 seeds,
#                                     on the FastVLM demo model (prepared, not yet run on a GPU; a CPU run of it at
#                                     4 sources, 1 seed, 6 steps went through every row: 3 min on 2 cores)
#   bash eval/gpu_session10.sh train   (issue 16's fine-tuning step, unchanged; carry .whl_train)
# Results land in $OUT; copy them into eval/results/ and run `python eval/render_benchmarks.py`.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl_demo/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
python3 -c "import transformers, timm, skimage; print('transformers', transformers.__version__, 'timm', timm.__version__)" || exit
# score the held-out test splits with run $1, check them, export the folded model; $2 tags the file names
check_and_export() {
  for d in g224 g448; do
    python3 -m lmm_vqa.cli score data/$d/test --model $1 --out $OUT/pred$2_$d.csv --quiet --batch-size 256 --workers 14
    python3 eval/graded_check.py $OUT/pred$2_$d.csv --labels data/$d/test/labels.txt --record $OUT/demo_graded_$d.json
  done
  python3 eval/export_demo_model.py $1 $OUT/demo_model
  # the device returns only a few files: the model, the log and the predictions travel as one archive
  (cd $OUT && tar -czf demo_bundle.tgz demo_model train$2.log pred$2_* && rm -rf demo_model train$2.log pred$2_*)
}
if [ "$1" = demo2 ]; then
  [ -f runs/demo_model/config.json ] || { echo "run the demo step first, on this machine"; exit 3; }
  timeout ${TRAIN_LIMIT:-320} python3 -m lmm_vqa.cli train train/configs/demo_model.yaml model=runs/demo_model \
    output_dir=runs/demo2 epochs=6 lr=3e-4 > $OUT/train2.log 2>&1
  grep -v "it/s" $OUT/train2.log | grep epoch | tail; cp runs/demo2/log.jsonl $OUT/log2.jsonl
  check_and_export runs/demo2 2
elif [ "$1" = demo ]; then
  S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
  start=$(date +%s)
  ($S data/g224 --sources 240 --size 224x128 && $S data/g448 --sources 96 --size 448x256 --seed 1) 2>&1 | grep -v "video/s" || exit
  echo "synth took $(( $(date +%s) - start )) s"
  python3 eval/build_demo_base.py data/demo_base --family fast_vlm || exit
  timeout ${TRAIN_LIMIT:-330} python3 -m lmm_vqa.cli train train/configs/demo_model.yaml > $OUT/train.log 2>&1
  grep -v "it/s" $OUT/train.log | tail -n 14; cp runs/demo_model/log.jsonl $OUT/; cp runs/demo_model/curve.png $OUT/
  check_and_export runs/demo_model ""
fi
if [ "$1" = ablation ]; then
  timeout ${ABL_LIMIT:-540} python3 eval/hive_ablation.py --variant local --seeds 0 1 2 --sources 24 --epochs 3 \
    --parallel --train batch_size=32 num_workers=3 eval_batch_size=64 lr=5e-4 gradient_checkpointing=false \
    --record $OUT/hive_ablation_local.json > $OUT/ablation.log 2>&1
  grep -v "it/s" $OUT/ablation.log | tail -n 16; cp runs/ablation_local/*.png $OUT/ 2>/dev/null
fi
