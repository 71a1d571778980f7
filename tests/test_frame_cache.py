"""Training's keyframe cache: decoded once, read back the same, invalidated when the video changes."""

import numpy as np
import pytest

from lmm_vqa.video import Sampling
from train.lora_finetune import TrainConfig, VideoSamples, fill_frame_cache


def test_frame_cache_matches_decoding_and_follows_the_file(videos, tmp_path):
    paths = [str(videos["h264"]), str(videos["av1"])]
    sampling = Sampling.parse("fps:2", 4)
    plain = VideoSamples(paths, sampling, "all", seed=0)
    cached = VideoSamples(paths, sampling, "all", seed=0, cache=tmp_path / "cache")
    fill_frame_cache(cached, num_workers=1, rank=0, world=1, disable=True)
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 2
    for i in range(2):
        np.testing.assert_array_equal(cached[i][0], plain[i][0])
    # another sampling is another entry, never the first one's frames
    other = VideoSamples(paths, Sampling.parse("fps:1", 4), "all", seed=0, cache=tmp_path / "cache")
    assert other.cache_file(0) != cached.cache_file(0)
    # the video rewritten: its old entry no longer answers
    before = cached.cache_file(1)
    data = open(paths[1], "rb").read()
    copy = tmp_path / "copy.mkv"
    copy.write_bytes(data)
    moved = VideoSamples([str(copy)], sampling, "all", seed=0, cache=tmp_path / "cache")
    first = moved.cache_file(0)
    copy.write_bytes(data + b"\0")
    assert moved.cache_file(0) not in (first, before)


def test_hflip_mirrors_a_share_of_the_samples_the_same_way_on_every_run(videos, tmp_path):
    paths = [str(videos["h264"])] * 40
    sampling = Sampling.parse("fps:2", 4)
    plain = VideoSamples(paths, sampling, "random", seed=3, cache=tmp_path / "cache")
    flipped = VideoSamples(paths, sampling, "random", seed=3, cache=tmp_path / "cache", hflip=0.5)
    mirrored = []
    for epoch in (0, 1):
        plain.epoch = flipped.epoch = epoch
        for i in range(len(paths)):
            a, b = plain[i][0], flipped[i][0]
            assert a.shape == b.shape and b.flags["C_CONTIGUOUS"]
            same = np.array_equal(a, b)
            assert same or np.array_equal(a[:, :, ::-1], b)  # the same keyframe as without hflip, mirrored or not
            mirrored.append(not same)
            np.testing.assert_array_equal(flipped[i][0], b)  # asked again (a resumed run): the same answer
    assert 25 < sum(mirrored) < 55  # about half of the 80 samples
    with pytest.raises(ValueError, match="hflip"):
        TrainConfig(model="m", train_labels="l", hflip=1.5)


def test_random_crop_cuts_squares_at_the_frames_scale_from_all_over_the_frame(videos, tmp_path):
    from transformers import CLIPImageProcessor, Qwen2VLImageProcessor

    from train.lora_finetune import check_random_crop

    sampling = Sampling.parse("fps:2", 4)
    for name in ("odd_size", "portrait"):
        paths = [str(videos[name])] * 30
        plain = VideoSamples(paths, sampling, "all", seed=1, cache=tmp_path / "cache")
        cut = VideoSamples(paths, sampling, "all", seed=1, cache=tmp_path / "cache", random_crop=True)
        full = plain[0][0]
        _, h, w, _ = full.shape
        side, long = min(h, w), max(h, w)
        places = set()
        for i in range(len(paths)):
            square = cut[i][0]
            assert square.shape == (len(full), side, side, 3) and square.flags["C_CONTIGUOUS"]
            at = [o for o in range(long - side + 1)
                  if np.array_equal(square, full[:, :, o:o + side] if w > h else full[:, o:o + side])]
            assert at, "the square is the frame's own pixels, not resized"
            places.add(at[0])
            np.testing.assert_array_equal(cut[i][0], square)  # the same on a resumed run
        assert len(places) > (long - side + 1) // 3  # spread over the frame, not one place
    # a processor that resizes the short side and centre-crops keeps the same pixels of a centred square as of the
    # whole frame: the squares are what scoring sees, moved
    clip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    frame = np.random.default_rng(0).integers(0, 256, (64, 112, 3), dtype=np.uint8)
    whole = clip(frame, return_tensors="np")["pixel_values"]
    gap = {o: np.abs(whole - clip(frame[:, o:o + 64], return_tensors="np")["pixel_values"]).mean()
           for o in range(0, 49, 4)}
    assert gap[24] < 0.05 * min(g for o, g in gap.items() if o != 24)  # the centred square, and only it
    check_random_crop(clip, TrainConfig(model="m", train_labels="l", random_crop=True))
    with pytest.raises(ValueError, match="random_crop"):  # Qwen-VL keeps the whole frame: a square would be new
        check_random_crop(Qwen2VLImageProcessor(), TrainConfig(model="m", train_labels="l", random_crop=True))
    with pytest.raises(ValueError, match="random_crop"):
        check_random_crop(clip, TrainConfig(model="m", train_labels="l", random_crop=True, views="dual",
                                            encoder="dual"))
