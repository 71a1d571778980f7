"""Save the demo model's untrained base: a random small LLaVA checkpoint in the llava-hf format.

    python eval/build_demo_base.py data/demo_base
"""

import sys

from lmm_vqa.testing import DEMO_SHAPES, build_llava_checkpoint

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "data/demo_base"
    build_llava_checkpoint(out, **DEMO_SHAPES, seed=0)
    print(f"wrote a random demo base checkpoint to {out}")
