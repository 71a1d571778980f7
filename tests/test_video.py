import numpy as np
import pytest

from lmm_vqa.video import Sampling, VideoError, _load_pyav, load_frames, select_indices


@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "av1"])
def test_codecs_decode_all_frames_at_10fps(videos, name):
    f = load_frames(videos[name], "uniform:20", max_frames=32)
    assert f.frames.shape == (20, 64, 64, 3) and f.frames.dtype == np.uint8
    assert f.fps == pytest.approx(10)
    # The decoded content is the pattern we encoded, not garbage: frames differ over time.
    assert np.abs(f.frames[0].astype(int) - f.frames[-1].astype(int)).mean() > 5


def test_av1_falls_back_to_pyav(videos):
    assert load_frames(videos["av1"], "fps:1").decoder == "pyav"


def test_fps_sampling_one_frame_per_second_from_t0(videos):
    f = load_frames(videos["h264"], "fps:1")  # 20 frames at 10 fps = 2 s
    assert f.indices.tolist() == [0, 10]
    np.testing.assert_allclose(f.timestamps_s, [0.0, 1.0])


@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "av1"])
def test_keyframes_are_the_i_frames(videos, name):
    # Encoded with an I-frame exactly every 5 frames; decord and PyAV must agree.
    f = load_frames(videos[name], "keyframes", max_frames=16)
    assert f.indices.tolist() == [0, 5, 10, 15]
    assert _load_pyav(str(videos[name]), Sampling.parse("keyframes")).indices.tolist() == [0, 5, 10, 15]


def test_max_frames_caps_every_strategy(videos):
    for spec in ["fps:10", "uniform:20", "keyframes"]:
        assert len(load_frames(videos["vp9"], spec, max_frames=3).frames) == 3


@pytest.mark.parametrize("name,shape", [("odd_size", (50, 78)), ("portrait", (96, 48)), ("one_frame", (48, 64)),
                                        ("image", (40, 56))])
def test_odd_inputs(videos, name, shape):
    f = load_frames(videos[name], "fps:1")
    assert f.frames.shape[1:3] == shape and len(f.frames) >= 1


def test_truncated_video_keeps_decodable_frames(videos):
    f = load_frames(videos["truncated"], "uniform:20", max_frames=20)
    assert 1 <= len(f.frames) < 20


@pytest.mark.parametrize("name,message", [("zero_bytes", "empty file"), ("not_video", "not a decodable video")])
def test_broken_files_raise_clear_errors(videos, name, message):
    with pytest.raises(VideoError, match=message):
        load_frames(videos[name])


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_frames(tmp_path / "nope.mp4")


@pytest.mark.parametrize("spec", ["fps:0", "uniform:2.5", "frames:3", "fps", "uniform:-1"])
def test_bad_sampling_spec(spec):
    with pytest.raises(ValueError, match="bad frame sampling"):
        Sampling.parse(spec)


def test_fps_sampling_takes_q_aligns_frames():
    """Q-Align's load_video: frames int(fps * i) for i < int(num_frames / fps), whole seconds only."""
    for num_frames, fps in [(315, 30.0), (300, 29.97), (250, 25.0), (24, 23.976)]:
        expected = [int(fps * i) for i in range(int(num_frames / fps))]
        assert select_indices(num_frames, fps, Sampling("fps", 1, max_frames=64)).tolist() == expected
    assert select_indices(10, 25.0, Sampling("fps", 1)).tolist() == [0]  # under a second: its first frame


def test_select_indices_uniform_centres_and_bounds():
    assert select_indices(10, 25.0, Sampling("uniform", 2)).tolist() == [2, 7]
    assert select_indices(3, 25.0, Sampling("uniform", 8, max_frames=8)).tolist() == [0, 1, 2]
    assert select_indices(0, 25.0, Sampling("fps", 1)).tolist() == []


@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "av1", "odd_size", "portrait", "one_frame", "truncated"])
@pytest.mark.parametrize("spec", ["fps:1", "fps:3", "uniform:7", "keyframes"])
def test_pyav_seeking_gives_the_frames_of_a_full_decode(videos, name, spec):
    from lmm_vqa.video import _decode_seeking, _decode_sequential, _scan

    num_frames, keys, fps, pts = _scan(str(videos[name]))
    idx = select_indices(num_frames, fps, Sampling.parse(spec, 16), keys)
    assert pts is not None and len(keys)
    full = _decode_sequential(str(videos[name]), idx)
    sought = _decode_seeking(str(videos[name]), idx, keys, pts)
    assert sorted(sought) == sorted(full) and len(full) >= 1
    for i in full:
        assert np.array_equal(sought[i][0], full[i][0]), f"frame {i} differs"
        assert sought[i][1] == pytest.approx(full[i][1])
