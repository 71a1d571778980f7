"""Save the demo model's untrained base: a random small checkpoint in the llava-hf or the FastVLM format.

    python eval/build_demo_base.py data/demo_base [--dct-stem]
    python eval/build_demo_base.py data/demo_base --family fast_vlm [--side 448]

`--family fast_vlm` (the bundled demo since session 11): a FastViT-HD tower (convolutional, 1.2 M parameters,
in its trainable multi-branch form; `eval/export_demo_model.py` folds it) + Qwen2 4x256, 256 px input.
`--embed-dims 32 64 128 256 512 --layers 1 2 2 2 1`: a larger tower (5.7 M parameters) of the same family.

`--dct-stem`: the vision tower's patch embedding starts as a 2-D DCT filter bank (luma at every frequency up
to the budget, chroma at the lowest) instead of random filters, so that from the first step each patch token
carries its patch's frequency content, where blur, noise, blocking and banding show; it still trains.
"""

import argparse

import numpy as np

from lmm_vqa.testing import DEMO_FAST_VLM_SHAPES, DEMO_SHAPES, build_fast_vlm_checkpoint, build_llava_checkpoint


def dct_filters(patch: int, count: int, chroma: int = 16) -> np.ndarray:
    """(count, 3, patch, patch) orthonormal filters: `chroma` lowest-frequency DCT bases for each of two
    opponent colour directions, the rest luma DCT bases in order of frequency (u + v, then u)."""
    n = np.arange(patch)
    c = np.sqrt(2 / patch) * np.cos(np.pi * (2 * n[None] + 1) * n[:, None] / (2 * patch))
    c[0] /= np.sqrt(2)
    order = sorted(((u, v) for u in range(patch) for v in range(patch)), key=lambda uv: (uv[0] + uv[1], uv[0]))
    basis = [np.outer(c[u], c[v]) for u, v in order]
    luma, red_green, blue_yellow = (np.array(d) / np.linalg.norm(d) for d in ((1, 1, 1), (1, -1, 0), (1, 1, -2)))
    filters = [np.einsum("c,hw->chw", d, b) for d in (red_green, blue_yellow) for b in basis[:chroma]]
    filters += [np.einsum("c,hw->chw", luma, b) for b in basis[:count - len(filters)]]
    return np.stack(filters).astype(np.float32)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default="data/demo_base")
    p.add_argument("--family", choices=["llava", "fast_vlm"], default="llava")
    p.add_argument("--side", type=int, default=DEMO_FAST_VLM_SHAPES["side"],
                   help="fast_vlm: the input image's side in pixels (one visual token per 64 px)")
    p.add_argument("--dct-stem", action="store_true", help="llava: start the patch embedding as a DCT filter bank")
    p.add_argument("--embed-dims", type=int, nargs=5, help="fast_vlm: the tower's five stage widths "
                   "(default 16 32 64 128 256)")
    p.add_argument("--layers", type=int, nargs=5, help="fast_vlm: blocks per stage (default 1 1 1 1 1)")
    args = p.parse_args()
    if args.family == "fast_vlm":
        from lmm_vqa.backbones.fast_vlm import DEMO_VISION, vision_config

        vision = DEMO_VISION
        if args.embed_dims or args.layers:
            vision = vision_config(args.embed_dims or (16, 32, 64, 128, 256), args.layers or (1, 1, 1, 1, 1),
                                   inference_mode=False)
        folder = build_fast_vlm_checkpoint(args.out, vision, **{**DEMO_FAST_VLM_SHAPES, "side": args.side})
    else:
        folder = build_llava_checkpoint(args.out, **DEMO_SHAPES, seed=0)
    if args.dct_stem:
        import torch
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "model.safetensors")
        key = next(k for k in weights if k.endswith("patch_embedding.weight"))
        dim = weights[key].shape[0]
        weights[key] = torch.from_numpy(dct_filters(DEMO_SHAPES["patch_size"], dim))
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    print(f"wrote a random {args.family} demo base checkpoint{' with a DCT stem' if args.dct_stem else ''} to {folder}")
