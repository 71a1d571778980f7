"""Can the demo model's vision tower learn to see a fine distortion? A probe for issue 15.

    python eval/texture_probe.py --kind noise --arch dct --seconds 60 --device cuda
    python eval/texture_probe.py --kind noise --arch hand             # the hand-feature reference, no training

Frames of dead-leaves content (sources never shared between the training and validation frames) at 224x128 (or
`--size`) get one graded distortion at a uniformly random strength (the table calibrated nearest that width); the
demo model's CLIP image processor prepares them as scoring does. `--arch rand|dct`: the demo-shaped ViT (6 x 192,
16 px patches; random or DCT-initialised patch embedding) with a linear head on its mean-pooled tokens, trained by
regression on the strength for `--seconds`; prints validation SRCC as it goes. `--arch cnn`: a three-layer
convolutional net in its place, the sanity check that the frames and targets can be learnt. `--arch fastvit`: the
FastVLM demo model's FastViT-HD tower (timm's initialisation, training form), its input `--side` 256 px by default.
`--arch hand`: the mean absolute Laplacian of the prepared frames, no training: what one fixed feature gets.
Compression frames are a short clip through H.264 at the strength's CRF, one frame decoded back.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def frames(kind: str, n: int, sources: list[int], seed: int, size: tuple[int, int] = (224, 128), side: int = 224):
    """(n, 3, side, side) prepared pixel values (fp16) and the strengths in [0, 1]."""
    from transformers import CLIPImageProcessor

    from lmm_vqa import synth

    rng = np.random.default_rng(seed)
    pictures = {i: synth.source_image(i, np.random.default_rng(i)) for i in sources}
    processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    images, strengths = [], rng.uniform(0, 1, n)
    for s in strengths:
        param = synth.graded_param(kind, s, width=size[0])
        if kind == "compression":  # the encoder's artefacts: a 4-frame clip through H.264 at that CRF, a frame back
            images.append(encoded_frame(synth.render_clip(pictures[rng.choice(sources)], size, 4, rng), param, rng))
        else:
            clip = synth.render_clip(pictures[rng.choice(sources)], size, 1, rng)
            images.append(synth.graded_distort(clip, kind, param)[0])
    pixels = processor(images=images, return_tensors="pt")["pixel_values"].half()  # half the memory; fp16 holds them
    return pixels, torch.tensor(strengths, dtype=torch.float32)


def encoded_frame(clip, crf: float, rng) -> np.ndarray:
    """One frame (intra or predicted, at random) of `clip` encoded with H.264 at `crf` and decoded, as the graded
    benchmark's compressed videos are made (8 fps)."""
    import tempfile
    from pathlib import Path

    from lmm_vqa.encoding import write_video
    from lmm_vqa.video import load_frames

    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "c.mp4", clip, fps=8, crf=int(round(crf)))
        frames = load_frames(path, f"uniform:{len(clip)}", max_frames=len(clip)).frames
    return frames[rng.integers(len(frames))]


def frames_parallel(kind: str, n: int, sources: list[int], seed: int, size, workers: int, side: int = 224):
    """frames() in `workers` processes, each making its share with its own seed."""
    if workers <= 1:
        return frames(kind, n, sources, seed, size, side)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [n // workers + (i < n % workers) for i in range(workers)]
    # spawned, not forked: a fork of a process whose torch threads are running can hang
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(frames, [kind] * workers, shares, [sources] * workers,
                              [seed * 1000 + i for i in range(workers)], [size] * workers, [side] * workers))
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def laplacian_energy(x: torch.Tensor) -> torch.Tensor:
    g = x.mean(1)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    return lap.abs().mean((1, 2))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", default="noise")
    p.add_argument("--arch", choices=["rand", "dct", "cnn", "fastvit", "hand"], default="dct")
    p.add_argument("--size", default="224x128", help="frame size WxH (its own calibrated table applies); the "
                                                    "processor then scales the short side to 224")
    p.add_argument("--side", type=int, default=None, help="the encoder's input side (default: 224, 256 for fastvit)")
    p.add_argument("--train-frames", type=int, default=3000)
    p.add_argument("--workers", type=int, default=1, help="processes making the training frames")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    from lmm_vqa.metrics import srcc

    first = 16  # past scikit-image's samples: dead-leaves pictures
    size = tuple(int(v) for v in args.size.split("x"))
    side = args.side or (256 if args.arch == "fastvit" else 224)
    vx, vy = frames(args.kind, 200, list(range(first + 40, first + 50)), seed=1, size=size, side=side)
    if args.arch == "hand":
        print(f"{args.kind}: mean |Laplacian| of the prepared frames, validation SRCC "
              f"{srcc(laplacian_energy(vx.float()).numpy(), vy.numpy()):.3f}")
        return
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from build_demo_base import dct_filters
    from lmm_vqa.testing import DEMO_SHAPES

    tx, ty = frames_parallel(args.kind, args.train_frames, list(range(first, first + 40)), 0, size, args.workers,
                             side)
    torch.manual_seed(0)
    if args.arch == "cnn":  # the sanity check: a small convolutional net on the same frames and targets
        features = torch.nn.Sequential(*[m for c_in, c_out, stride in [(3, 16, 1), (16, 32, 2), (32, 64, 2)]
                                         for m in (torch.nn.Conv2d(c_in, c_out, 3, stride, 1), torch.nn.ReLU())])
        model = lambda pixel_values: features(pixel_values).mean((2, 3))  # noqa: E731
        width, parameters = 64, list(features.parameters())
        features.to(args.device)
    elif args.arch == "fastvit":  # the demo's FastVLM tower (lmm_vqa.backbones.fast_vlm.DEMO_VISION)
        from transformers import TimmWrapperConfig, TimmWrapperModel

        from lmm_vqa.backbones.fast_vlm import DEMO_VISION, reinit_tower
        tower = TimmWrapperModel(TimmWrapperConfig(**DEMO_VISION))
        reinit_tower(tower)
        tower.to(args.device)
        model = lambda pixel_values: tower(pixel_values=pixel_values).last_hidden_state.mean((2, 3))  # noqa: E731
        width, parameters = tower.config.hidden_size, list(tower.parameters())
    else:
        vit = CLIPVisionModel(CLIPVisionConfig(**DEMO_SHAPES["vision"], image_size=224, patch_size=16)).to(args.device)
        model = lambda pixel_values: vit(pixel_values=pixel_values).last_hidden_state[:, 1:].mean(1)  # noqa: E731
        width, parameters = vit.config.hidden_size, list(vit.parameters())
    if args.arch == "dct":
        weight = next(w for n, w in vit.named_parameters() if n.endswith("patch_embedding.weight"))
        with torch.no_grad():
            weight.copy_(torch.from_numpy(dct_filters(16, weight.shape[0])))
    head = torch.nn.Linear(width, 1)
    head, tx, ty, vx = (t.to(args.device) for t in (head, tx, ty, vx))
    opt = torch.optim.AdamW([*parameters, *head.parameters()], lr=args.lr)

    def predict(x):
        return head(model(pixel_values=x.float())).squeeze(-1)

    start, step = time.perf_counter(), 0
    while True:
        done = time.perf_counter() - start > args.seconds
        if step % (50 if args.arch == "cnn" else 250) == 0 or done:
            with torch.no_grad():
                got = torch.cat([predict(vx[i:i + 100]) for i in range(0, len(vx), 100)]).cpu().numpy()
            print(f"{args.kind} {args.arch} step {step}: validation SRCC {srcc(got, vy.numpy()):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if done:
                return
        i = torch.randint(0, len(tx), (args.batch_size,), device=tx.device)
        loss = torch.nn.functional.mse_loss(predict(tx[i]), ty[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1


if __name__ == "__main__":
    main()
