# GPU steps of session 20 (issue 15): the demo model's architecture with a larger tower (FastViT-HD widths
# 32..512 and 1, 2, 2, 2, 1 blocks: 5.7 M parameters against the 1.2 M of sessions 12-18; 9.7 M in all),
# trained from scratch over calls back to back on one warm machine (data/ and runs/ stay there between calls),
# each making new pictures first. Training, export and the 448x256 test split's scores are
# eval/gpu_session17.sh's `all` step.
#   bash eval/gpu_session20.sh first   the random base, then session 17's data (DATA_UNTIL, default 230 s) and
#                                       training from that base (lr LR, default 1e-3)
#   bash eval/gpu_session20.sh more    new chunks until DATA_UNTIL, then training from the last call's best
#                                       checkpoint (runs/demo_model, moved to runs/big_N first)
# Carry .whl_demo. Results land in $OUT (demo.tgz.part_*: the exported model, its log and predictions, in parts
# of 15 MiB; `cat demo.tgz.part_* | tar -xz`). Session 20 ran `first` (DATA_UNTIL=230 STEP_MS=300 RESERVE=90),
# then `more` twice (DATA_UNTIL=0; LR=5e-4, then 3e-4) on one H200; the third call's model is shipped.
source eval/gpu_setup.sh
case $1 in
  first) python3 eval/build_demo_base.py data/big_base --family fast_vlm --side 448 --embed-dims 32 64 128 256 512 \
           --layers 1 2 2 2 1 || exit
         FROM=data/big_base;;
  more) n=$(ls -d runs/big_* 2>/dev/null | wc -l); mv runs/demo_model runs/big_$n || exit; FROM=runs/big_$n;;
  *) echo "step: first | more"; exit 2;;
esac
set +x
FROM=$FROM LR=${LR:-1e-3} CALL_LIMIT=$(left 0) bash eval/gpu_session17.sh all
