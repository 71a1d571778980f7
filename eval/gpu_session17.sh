# GPU steps of session 17 (issue 15), one H100 or H200: two calls back to back on one warm machine (data/ is
# ignored by git, so the second call finds what the first made; a cold machine starts bare), or both in one call.
#   bash eval/gpu_session17.sh data    make the sets: the 448x256 set of sessions 12-16 (seed 1: its train split
#       trains, val validates, test is scored), then new pictures at both sizes with `--versions 8` (each source's
#       pristine clip and 8 of its 32 other versions: about 3.7 times the sources per video) in chunks of their
#       own seeds, 448x256 and 224x128 in turn, until DATA_UNTIL seconds (a chunk cut short is lost alone); then
#       fill the training frame cache with what time is left.
#   bash eval/gpu_session17.sh train   from the shipped model, train on the new chunks' dead-leaves sources (index
#       16 and up: pictures no test split holds; all but the first 224x128 chunk's val split, which validates) and
#       the old 448x256 training split; export; score the 448x256 test split with the new and the shipped model;
#       one archive with the model, the log and the predictions.
#   bash eval/gpu_session17.sh all     both in one call (DATA_UNTIL 230 s by default).
# Session 18 ran `all` (DATA_UNTIL=240) from the shipped model. The next step, `FIRST_CHUNK=3 all` from the model
# shipped then (new pictures only), got no machine in sessions 18 and 19. Session 20 ran `all` three times through
# eval/gpu_session20.sh (a larger tower from scratch, FROM=...); STEP_MS's default is its step (about 350 ms on an
# H200; the smaller tower took 150 ms on an H100). Session 21 ran `FIRST_CHUNK=3 all` four times through
# eval/gpu_session21.sh (from session 20's model, with random_crop): its third call's model is shipped now.
# Session 22 added, for eval/gpu_session21.sh with FIRST_CHUNK=7: BG_WORKERS=N makes further chunks in the
# background while the model trains (N synth processes, until the training's time is up; the next call on the warm
# machine trains on them), and VAL_MODELS="new shipped" scores the validation files with those models. RESERVE
# must cover the export and every scoring after training: about 150 s with VAL_MODELS=new, 210 s with both (its
# first call, given 150, ran past the device's 600 s).
# Results land in $OUT; copy the result files into eval/results/ and run `python eval/render_benchmarks.py`. The
# archive comes back in parts of 15 MiB (the device returns no file over 16 MiB): `cat demo.tgz.part_* | tar -xz`.
source eval/gpu_setup.sh  # OUT, LIMIT, left(), the wheels and this checkout installed
S="python3 -m lmm_vqa.cli synth --layout graded --seconds 2 --fps 8"
data() {
  local S="$S --workers ${WORKERS:-16}"
  [ -f data/g448/test/labels.txt ] || $S data/g448 --sources 96 --size 448x256 --seed 1 2>&1 | grep -v "video/s"
  echo "g448 ended at $SECONDS s"
  local i=${FIRST_CHUNK:-0}  # chunk i: seeds 20 + i and 40 + i; a later call starts past the chunks trained on
  while true; do  # a chunk takes about 40 s on 16 cores (H200 host); start one only where it can finish
    [ $(( DATA_UNTIL - SECONDS )) -gt 50 ] || break
    [ -f data/n448_$i/test/labels.txt ] || timeout $(( DATA_UNTIL - SECONDS )) $S data/n448_$i --sources ${CHUNK448:-150} \
      --size 448x256 --seed $(( 20 + i )) --versions 8 2>&1 | grep -v "video/s"
    [ $(( DATA_UNTIL - SECONDS )) -gt 55 ] || break
    [ -f data/n224_$i/test/labels.txt ] || timeout $(( DATA_UNTIL - SECONDS )) $S data/n224_$i --sources ${CHUNK224:-300} \
      --size 224x128 --seed $(( 40 + i )) --versions 8 2>&1 | grep -v "video/s"
    echo "chunk $i ended at $SECONDS s"; i=$(( i + 1 ))
  done
  python3 - <<'PY' || exit
from pathlib import Path
for f in sorted(Path("data").glob("n*_*/*/labels.txt")):  # dead-leaves sources only: index 16 and up
    lines = f.read_text().splitlines()
    new = [l for l in lines if int(l.split(",")[0].rsplit("_", 2)[1]) >= 16]
    if new:
        (f.parent / "labels_new.txt").write_text("\n".join(new) + "\n")
    print(f, len(new), "of", len(lines))
PY
}
train_files() { ls data/g448/train/labels.txt data/n*_*/*/labels_new.txt | grep -v "n224_${FIRST_CHUNK:-0}/val"; }
val_files() { ls data/g448/val/labels.txt data/n224_${FIRST_CHUNK:-0}/val/labels_new.txt 2>/dev/null; }
run() {  # a training run on whichever chunks were made
  python3 -m lmm_vqa.cli train train/configs/demo_model.yaml frame_cache=data/frame_cache batch_size=128 \
    model=${FROM:-lmm_vqa/demo_model} train_labels=[$(train_files | paste -sd,)] hflip=0.5 val_limit=400 \
    val_labels=[$(val_files | paste -sd,)] "$@"
}
train() {
  EPOCHS=$(python3 -c "
import sys
n = sum(1 for f in '$(train_files | paste -sd' ')'.split() for _ in open(f))
budget = $LIMIT - ${RESERVE:-80} - $SECONDS - 30  # loading the model
epoch_s = n // 128 * ${STEP_MS:-350} / 1000 + 7 / 2  # a validation (400 videos) every second epoch
print(n, 'training videos', file=sys.stderr); print(max(1, int(budget / epoch_s)))")
  echo "training $EPOCHS epochs"
  if [ -n "$BG_WORKERS" ]; then  # chunks for the next call, made while this one trains (none finishes within
    # a few seconds, so the training's file list, read at its start, does not change under it)
    ( WORKERS=$BG_WORKERS DATA_UNTIL=$(( LIMIT - ${RESERVE:-80} )); data ) > $OUT/bg_data.log 2>&1 &
    BG=$!
  fi
  timeout $(left ${RESERVE:-80}) bash -c "$(declare -f train_files val_files run); run output_dir=runs/demo_model \
    epochs=$EPOCHS lr=${LR:-3e-4} log_every=10 val_every=2 $EXTRA" > $OUT/train.log 2>&1
  echo "training ended at $SECONDS s"
  if [ -n "$BG_WORKERS" ]; then  # a chunk cut short is made again by the next call
    kill $BG; pkill -f "lmm_vqa.cli synth"; wait $BG; grep "ended at" $OUT/bg_data.log
  fi
  grep -v "it/s" $OUT/train.log | grep "epoch\|best" | tail -n 30; cp runs/demo_model/log.jsonl $OUT/
  python3 eval/export_demo_model.py runs/demo_model runs/demo_export
  for m in new shipped; do  # both models on the same clips
    python3 -m lmm_vqa.cli score data/g448/test $([ $m = new ] && echo --model runs/demo_export) \
      --out runs/pred_${m}_g448.csv --overwrite --quiet --batch-size 256 --workers 14
    python3 eval/graded_check.py runs/pred_${m}_g448.csv --labels data/g448/test/labels.txt \
      --record $OUT/demo_s17_${m}_g448.json | tail -n 2
  done
  for m in ${VAL_MODELS:-}; do  # the validation files, whole (training validates on 400 of their clips)
    for v in data/g448/val/labels.txt data/n224_${FIRST_CHUNK:-0}/val/labels_new.txt; do
      local name=val_${m}_$(basename $(dirname $(dirname $v)))  # val_new_g448, val_shipped_n224_7, ...
      python3 -m lmm_vqa.cli score $(dirname $v) $([ $m = new ] && echo --model runs/demo_export) \
        --out runs/$name.csv --overwrite --quiet --batch-size 256 --workers 14
      python3 eval/graded_check.py runs/$name.csv --labels $v --record $OUT/$name.json | tail -n 2
    done
  done
  cp data/g448/test/labels.txt runs/labels_g448.txt
  mv $OUT/train.log runs/
  tar -czf $OUT/demo.tgz -C runs demo_export train.log $(cd runs && ls pred_*.csv labels_*.txt)
  split -b 15M $OUT/demo.tgz $OUT/demo.tgz.part_ && rm $OUT/demo.tgz
  echo "done at $SECONDS s"
}
case $1 in
  data) DATA_UNTIL=${DATA_UNTIL:-$(( LIMIT - 60 ))}; data
    # the frame cache, filled by a run that stops after one step (the cache keeps every file it finished)
    timeout $(left 5) bash -c "$(declare -f train_files val_files run); run output_dir=runs/warm max_steps=1 val_labels=null" \
      > $OUT/warm.log 2>&1
    ls data/frame_cache | wc -l; echo "cache ended at $SECONDS s";;
  train) train;;
  all) DATA_UNTIL=${DATA_UNTIL:-230}; data; train;;
  *) echo "step: data | train | all"; exit 2;;
esac
