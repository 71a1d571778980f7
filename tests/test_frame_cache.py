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
