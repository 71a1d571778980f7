# GPU steps of session 21 (issue 15): the shipped demo model (session 20's larger tower) on new pictures, with the
# crop moved over the frame (random_crop), over calls back to back on one warm machine (data/ and runs/ stay there
# between calls). Each call makes new chunks of pictures (seeds past the three session 20 trained on) until
# DATA_UNTIL, then trains on every new chunk so far and the 448x256 training split; training, export and the
# 448x256 test split's scores (new and shipped model, same call) are eval/gpu_session17.sh's `all` step.
#   bash eval/gpu_session21.sh first   from lmm_vqa/demo_model
#   bash eval/gpu_session21.sh more    from the last call's best checkpoint (runs/demo_model, moved to runs/s21_N)
# Session 22 ran it again from the model shipped then, on chunks past session 21's: FIRST_CHUNK=7 BG_WORKERS=8
# (eval/gpu_session17.sh says what those do). Carry .whl_demo. Results land in $OUT (demo.tgz.part_*: `cat demo.tgz.part_* | tar -xz`).
source eval/gpu_setup.sh
case $1 in
  first) FROM=lmm_vqa/demo_model;;
  more) n=$(ls -d runs/s21_* 2>/dev/null | wc -l); mv runs/demo_model runs/s21_$n || exit; FROM=runs/s21_$n;;
  *) echo "step: first | more"; exit 2;;
esac
set +x
FROM=$FROM FIRST_CHUNK=${FIRST_CHUNK:-3} LR=${LR:-3e-4} EXTRA="random_crop=true $EXTRA" CALL_LIMIT=$(left 0) \
  bash eval/gpu_session17.sh all
