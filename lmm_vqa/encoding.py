"""Frames -> an encoded video file with PyAV: the inverse of video.py, for synthetic data and tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CODECS = {"h264": ("libx264", ".mp4"), "hevc": ("libx265", ".mp4"), "vp9": ("libvpx-vp9", ".webm"),
          "av1": ("libsvtav1", ".mkv")}


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 10, codec: str = "h264",
                gop: int | None = None, crf: int | None = None, preset: str | None = None) -> Path:
    """Encode (T, H, W, 3) uint8 frames with PyAV. `codec` is a key of CODECS or an encoder name;
    `preset` is the encoder's speed setting (x264/x265 names, VP9 cpu-used, SVT-AV1 preset)."""
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
    encoder = CODECS.get(codec, (codec, None))[0]
    path = Path(path)
    # faststart puts the mp4 index first, so a truncated file still decodes in part.
    with av.open(str(path), "w", options={"movflags": "faststart"} if path.suffix == ".mp4" else {}) as out:
        stream = out.add_stream(encoder, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        options = {}
        fixed_gop = f"keyint={gop}:min-keyint={gop}:scenecut=0:" if gop else ""  # I-frames exactly every `gop`
        if gop:
            stream.codec_context.gop_size = gop
        if crf is not None:
            options["crf"] = str(crf)
            if encoder == "libvpx-vp9":
                options["b"] = "0"  # constant quality
        if preset is not None:
            options["cpu-used" if encoder == "libvpx-vp9" else "preset"] = str(preset)
        if encoder == "libx264" and gop:
            options["x264-params"] = fixed_gop[:-1]
        if encoder == "libx265":
            options["x265-params"] = fixed_gop + "log-level=error"
        stream.options = options
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
