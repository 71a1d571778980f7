# GPU step of session 18 (issue 15), one H100 or H200, carry .whl_demo: the narrow variant's HIVE ablation at three
# times the CPU run's sources (48 at 448x256), hard targets, the base with the finer words, the global-view rows;
# seeds one after another until the call's time runs short, then the table over the seeds that finished.
# It got no machine; session 19 ran the same ablation on the CPU (docs/benchmarks.md, "at three times the sources").
source eval/gpu_setup.sh  # OUT, LIMIT, left(), the wheels and this checkout installed
A="python3 eval/hive_ablation.py --variant narrow --size 448x256 --sources ${SOURCES:-48} --epochs 4 --base lmm_vqa/demo_model
   --workers 16 --data data/narrow448 --global-only --add-words --parallel --work runs/abl_narrow"
T="batch_size=8 num_workers=2 eval_batch_size=64 lr=5e-4 gradient_checkpointing=false labels=hard plcc_weight=0 rank_weight=0"
timeout $(left 45) $A --seeds 0 1 2 --train $T --record $OUT/hive_ablation_narrow_hard_gpu.json 2>&1 | grep -v "it/s" | tail -n 12
if [ ! -f $OUT/hive_ablation_narrow_hard_gpu.json ]; then  # cut short: the table over the finished seeds
  SEEDS=$(ls runs/abl_narrow/seed*/results.json 2>/dev/null | sed 's/.*seed\([0-9]*\).*/\1/' | paste -sd' ')
  [ -n "$SEEDS" ] && $A --seeds $SEEDS --train $T --record $OUT/hive_ablation_narrow_hard_gpu.json 2>&1 | tail -n 9
fi
cp runs/abl_narrow/hist.png $OUT/ 2>/dev/null; echo "done at $SECONDS s"
