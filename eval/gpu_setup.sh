# The start of every GPU session script (eval/gpu_session15.sh on), sourced: $OUT, the call's time limit and left(),
# the carried wheels (WHL, default .whl_demo) and this checkout installed, and the GPU's name printed.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
SECONDS=0  # bash counts the call's time from here
LIMIT=${CALL_LIMIT:-585}
left() { echo $(( LIMIT - SECONDS - ${1:-0} )); }  # seconds left in the call, less a reserve
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHL:-.whl_demo}/*.whl || exit
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LMM_VQA_COMMIT=${LMM_VQA_COMMIT:-unknown}  # the device copy has no git of its own
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null || exit
nvidia-smi --query-gpu=name --format=csv,noheader
