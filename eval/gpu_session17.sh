# GPU steps of session 17 (issue 15), one H100 or H200, two calls back to back on one warm machine (data/ is
# ignored by git, so the second call finds what the first made; a cold machine starts bare).
#   bash eval/gpu_session17.sh data    make the sets: the 448x256 set of sessions 12-16 (seed 1: its train split
#       trains, val validates, test is scored) and new pictures at both sizes with `--versions 8` (each source's
#       pristine clip and 8 of its 32 other versions: about 3.7 times the sources per video); then fill the
#       training frame cache with what time is left.
#   bash eval/gpu_session17.sh train   from the shipped model, train on the new sets' dead-leaves sources (index 16
#       and up: pictures no test split holds) and the old 448x256 training split; export; score the 448x256 test
#       split with the new and the shipped model; one archive with the model, the log and the predictions.
# Results land in $OUT; copy the result files into eval/results/ and run `python eval/render_benchmarks.py`.
source eval/gpu_setup.sh  # OUT, LIMIT, left(), the wheels and this checkout installed
S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8 --workers 16"
run() {  # a training run on whichever new sets were made: all their dead-leaves sources but n224's val split's
  TRAIN="[$(ls data/g448/train/labels.txt data/n*/{train,test}/labels_new.txt data/n448/val/labels_new.txt | paste -sd,)]"
  python3 -m lmm_vqa.cli train train/configs/demo_model.yaml frame_cache=data/frame_cache batch_size=128 \
    model=${FROM:-lmm_vqa/demo_model} train_labels=$TRAIN hflip=0.5 val_limit=400 \
    val_labels=[data/g448/val/labels.txt,data/n224/val/labels_new.txt] "$@"
}
if [ "$1" = data ]; then
  [ -f data/g448/test/labels.txt ] || $S data/g448 --sources 96 --size 448x256 --seed 1 2>&1 | grep -v "video/s"
  echo "g448 ended at $SECONDS s"
  [ -f data/n448/test/labels.txt ] || timeout $(left 240) $S data/n448 --sources ${N448:-600} --size 448x256 \
    --seed 12 --versions 8 2>&1 | grep -v "video/s"
  echo "n448 ended at $SECONDS s"
  [ -f data/n224/test/labels.txt ] || timeout $(left 50) $S data/n224 --sources ${N224:-1200} --size 224x128 \
    --seed 11 --versions 8 2>&1 | grep -v "video/s"
  echo "n224 ended at $SECONDS s"
  python3 - <<'PY' || exit
from pathlib import Path
for f in sorted(Path("data").glob("n*/*/labels.txt")):  # dead-leaves sources only: index 16 and up
    lines = f.read_text().splitlines()
    new = [l for l in lines if int(l.split(",")[0].rsplit("_", 2)[1]) >= 16]
    if new:
        (f.parent / "labels_new.txt").write_text("\n".join(new) + "\n")
    print(f, len(new), "of", len(lines))
PY
  # the frame cache, filled by a run that stops after one step (the cache keeps every file it finished)
  (export -f run; timeout $(left 5) bash -c "run output_dir=runs/warm max_steps=1 val_labels=null") > $OUT/warm.log 2>&1
  grep -c "" $OUT/warm.log; ls data/frame_cache | wc -l; echo "cache ended at $SECONDS s"
fi
if [ "$1" = train ]; then
  EPOCHS=$(python3 -c "
import glob, sys
files = glob.glob('data/g448/train/labels.txt') + glob.glob('data/n*/t*/labels_new.txt') + glob.glob('data/n448/val/labels_new.txt')
n = sum(1 for f in files for _ in open(f))
budget = $LIMIT - ${RESERVE:-80} - $SECONDS - 30  # loading the model
epoch_s = n // 128 * ${STEP_MS:-200} / 1000 + 7 / 2  # a validation (400 videos) every second epoch
print(n, 'training videos', file=sys.stderr); print(max(2, int(budget / epoch_s)))")
  echo "training $EPOCHS epochs"
  (export -f run; timeout $(left ${RESERVE:-80}) bash -c "run output_dir=runs/demo_model epochs=$EPOCHS \
    lr=${LR:-3e-4} log_every=10 val_every=2 $EXTRA") > $OUT/train.log 2>&1
  echo "training ended at $SECONDS s"
  grep -v "it/s" $OUT/train.log | grep "epoch\|best" | tail -n 30; cp runs/demo_model/log.jsonl $OUT/
  python3 eval/export_demo_model.py runs/demo_model runs/demo_export
  for m in new shipped; do  # both models on the same clips
    python3 -m lmm_vqa.cli score data/g448/test $([ $m = new ] && echo --model runs/demo_export) \
      --out runs/pred_${m}_g448.csv --quiet --batch-size 256 --workers 14
    python3 eval/graded_check.py runs/pred_${m}_g448.csv --labels data/g448/test/labels.txt \
      --record $OUT/demo_s17_${m}_g448.json | tail -n 2
  done
  cp data/g448/test/labels.txt runs/labels_g448.txt
  mv $OUT/train.log runs/
  tar -czf $OUT/demo.tgz -C runs demo_export train.log $(cd runs && ls pred_*.csv labels_*.txt)
  echo "done at $SECONDS s"
fi
