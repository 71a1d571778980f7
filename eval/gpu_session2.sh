# The GPU run behind docs/benchmarks.md (session 2), on a 2 x H200 machine:
# HIVE ablation on GPU 1 while the scoring benchmark runs on GPU 0; then the demo model's
# same-data evaluation; then 1 vs 2 GPUs.
set -x
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
(CUDA_VISIBLE_DEVICES=1 python3 eval/hive_ablation.py --data /tmp/hd --base lmm_vqa/demo_model --work /tmp/abl \
   --sources 40 --epochs 2 --train batch_size=32 num_workers=6 eval_batch_size=64 lr=5e-4 \
   gradient_checkpointing=false > $OUT/ablation.log 2>&1; cp /tmp/abl/ablation.json /tmp/abl/ablation_hist.png $OUT/) &
CUDA_VISIBLE_DEVICES=0 python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows ceiling e2e naive hive \
   --json $OUT/bench.json > $OUT/bench.log 2>&1
D=/tmp/synth_vdpve
lmm-vqa synth $D --layout vdpve --sources 120 --size 224x128 --seconds 2 --fps 8 --seed 0 --workers 8 > /dev/null 2>&1
md5sum $D/test/labels.txt > $OUT/demo_eval.txt
python3 eval/build_demo_base.py /tmp/demo_base > /dev/null 2>&1
CUDA_VISIBLE_DEVICES=0 lmm-vqa score $D/test --model /tmp/demo_base --out /tmp/untrained.csv --quiet --batch-size 64 --workers 8 2>/dev/null
CUDA_VISIBLE_DEVICES=0 lmm-vqa score $D/test --out /tmp/demo.csv --quiet --batch-size 64 --workers 8 2>/dev/null
python3 eval/classical_baseline.py --train $D/train/labels.txt --test $D/test/labels.txt --out /tmp/baseline --workers 8
for f in /tmp/untrained.csv /tmp/demo.csv /tmp/baseline/blur.csv /tmp/baseline/ridge.csv; do
  echo "== $f"; lmm-vqa evaluate $f --labels $D/test/labels.txt; done >> $OUT/demo_eval.txt 2>&1
wait
python3 eval/bench_score.py --work /tmp/bench --videos 24 --rows e2e multi --json $OUT/bench_multi.json > $OUT/bench_multi.log 2>&1
tail -5 $OUT/ablation.log
