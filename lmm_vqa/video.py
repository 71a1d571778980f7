"""Video file -> sampled frames (T, H, W, 3 uint8 RGB) and their timestamps.

decord is tried first (fast seeking); PyAV decodes what decord cannot (AV1, odd containers,
truncated streams). Images are one-frame videos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".y4m", ".ts", ".flv", ".mpg", ".mpeg", ".3gp")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


class VideoError(ValueError):
    """A file that cannot be read as a video: missing, empty, not a video, or no decodable frame."""


@dataclass(frozen=True)
class Sampling:
    """How keyframes are picked: `fps:F`, `uniform:N`, `linspace:N`, `qwen:F` or `keyframes`, at most `max_frames`."""

    kind: str  # "fps" | "uniform" | "linspace" | "qwen" | "keyframes"
    value: float = 0.0
    max_frames: int = 16

    @classmethod
    def parse(cls, spec: str, max_frames: int = 16) -> "Sampling":
        kind, _, arg = spec.strip().partition(":")
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if kind == "keyframes" and not arg:
            return cls("keyframes", 0.0, max_frames)
        if kind in ("fps", "uniform", "linspace", "qwen") and arg:
            try:
                value = float(arg)
            except ValueError:
                value = -1.0
            if value > 0 and (kind in ("fps", "qwen") or value == int(value)):
                return cls(kind, value, max_frames)
        raise ValueError(f"bad frame sampling {spec!r}: use 'fps:F' or 'qwen:F' (F > 0), 'uniform:N' or 'linspace:N' "
                         "(N >= 1), or 'keyframes'")

    def __str__(self) -> str:
        if self.kind == "keyframes":
            return "keyframes"
        return f"{self.kind}:{self.value:g}"


@dataclass
class Frames:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    timestamps_s: np.ndarray  # (T,) float seconds
    indices: np.ndarray  # (T,) frame index in the stream
    fps: float
    decoder: str  # "decord" | "pyav" | "image"
    num_wanted: int = 0  # frames the sampling asked for; more than len(frames) when a damaged file ended early

    @property
    def warning(self) -> str:
        """Empty, or why fewer frames came back than the sampling asked for."""
        if self.num_wanted > len(self.frames):
            return (f"decoded {len(self.frames)} of {self.num_wanted} sampled frames: the file is damaged or "
                    "truncated, so the score comes from the frames before the damage")
        return ""


def select_indices(num_frames: int, fps: float, sampling: Sampling, keyframe_indices=None) -> np.ndarray:
    """Frame indices to decode, sorted and unique, at most `sampling.max_frames` of them."""
    if num_frames < 1:
        return np.zeros(0, dtype=np.int64)
    if sampling.kind == "fps":
        # One frame every 1/F seconds starting at t=0, whole periods only, as Q-Align samples at 1 fps
        # (frames int(fps * i) for i < int(num_frames / fps)); a clip shorter than one period gives its first frame.
        step = (fps if fps > 0 else 1.0) / sampling.value
        count = max(1, int(num_frames / step))
        idx = np.minimum(np.floor(np.arange(count) * step).astype(np.int64), num_frames - 1)
    elif sampling.kind == "uniform":
        count = int(sampling.value)
        # Centres of `count` equal segments.
        idx = np.floor((np.arange(count) + 0.5) * num_frames / count).astype(np.int64)
    elif sampling.kind == "linspace":
        # Evenly from the first frame to the last, both included, rounded: Q-ReAlign's sampling.
        idx = np.round(np.linspace(0, num_frames - 1, int(sampling.value))).astype(np.int64)
    elif sampling.kind == "qwen":
        # qwen-vl-utils' video sampling (smart_nframes): F frames a second, at least 4, at most max_frames and
        # the clip's own frames, an even count (rounded down: frames go to the model in pairs), first to last.
        wanted = num_frames / (fps if fps > 0 else 1.0) * sampling.value
        high = min(sampling.max_frames, num_frames) // 2 * 2
        count = max(1, int(min(max(wanted, 4), high, num_frames)) // 2 * 2)
        idx = np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64)
    else:
        idx = np.asarray(keyframe_indices if keyframe_indices is not None and len(keyframe_indices) else [0])
        idx = idx[idx < num_frames]
    idx = np.unique(idx)
    if len(idx) > sampling.max_frames:
        keep = np.floor((np.arange(sampling.max_frames) + 0.5) * len(idx) / sampling.max_frames).astype(np.int64)
        idx = idx[keep]
    return idx


def shrink(frames: np.ndarray, max_side_px: int) -> np.ndarray:
    """(T, H, W, 3) frames whose long side exceeds `max_side_px`, scaled down to it with PIL's default
    (bicubic) filter, sides truncated to whole pixels, as Q-ReAlign prepares video frames."""
    h, w = frames.shape[1:3]
    if not max_side_px or max(h, w) <= max_side_px:
        return frames
    from PIL import Image

    scale = max_side_px / max(h, w)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size)) for f in frames])


QWEN_VIDEO_FACTOR = 28  # qwen-vl-utils: 14 px patches, merged 2 x 2
QWEN_VIDEO_MIN_PIXELS = 128 * 28 * 28
QWEN_VIDEO_MAX_PIXELS = 768 * 28 * 28
QWEN_VIDEO_TOTAL_PIXELS = 128000 * 28 * 28 * 0.9  # its budget for all of a video's frames together


def qwen_video_size(height: int, width: int, num_frames: int) -> tuple[int, int]:
    """The (height, width) qwen-vl-utils resizes a video's frames to: sides multiples of 28, the aspect kept,
    between 128 and 768 patches of 28 x 28 px a frame (fewer when many frames share its token budget)."""
    import math

    f = QWEN_VIDEO_FACTOR
    high = max(min(QWEN_VIDEO_MAX_PIXELS, QWEN_VIDEO_TOTAL_PIXELS / num_frames * 2), int(QWEN_VIDEO_MIN_PIXELS * 1.05))
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > high:
        beta = math.sqrt(height * width / high)
        h, w = max(f, math.floor(height / beta / f) * f), max(f, math.floor(width / beta / f) * f)
    elif h * w < QWEN_VIDEO_MIN_PIXELS:
        beta = math.sqrt(QWEN_VIDEO_MIN_PIXELS / (height * width))
        h, w = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
    return h, w


def qwen_video_resize(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 frames resized as qwen-vl-utils prepares a video: torchvision's bicubic resize with
    antialiasing on the uint8 frames (which it then hands on as floats of the same values)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    h, w = qwen_video_size(frames.shape[1], frames.shape[2], len(frames))
    if (h, w) == frames.shape[1:3]:
        return frames
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    out = resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def load_frames(path: str | os.PathLike, sampling: Sampling | str = "fps:1", max_frames: int = 16) -> Frames:
    """Decode the sampled frames of a video or image file.

    Raises ValueError for a missing file, a file that is not a video, or no decodable frame.
    """
    if isinstance(sampling, str):
        sampling = Sampling.parse(sampling, max_frames)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoError(f"no such file: {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"empty file (0 bytes): {path}")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return _load_image(path)
    declared = _declared_frames(path)  # also refuses a file that is no video, before decord logs about it
    errors = []
    try:
        return _load_decord(path, sampling, declared)
    except ImportError:
        pass  # decord is x86-64 Linux only; PyAV handles everything it does, only slower
    except Exception as e:  # decord raises its own DECORDError and RuntimeError subclasses
        errors.append(f"decord: {e}".splitlines()[0])
    try:
        return _load_pyav(path, sampling, declared)
    except VideoError:
        raise
    except Exception as e:  # av.error.FFmpegError and its many subclasses
        errors.append(f"pyav: {getattr(e, 'strerror', None) or e}".splitlines()[0])
    raise VideoError(f"not a decodable video: {path} ({'; '.join(errors)})")


def _load_image(path: str) -> Frames:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.array(im.convert("RGB"))  # writable: torch warns about read-only arrays
    except (UnidentifiedImageError, OSError) as e:
        raise VideoError(f"not a decodable image: {path} ({e})") from None
    return Frames(rgb[None], np.zeros(1), np.zeros(1, dtype=np.int64), 0.0, "image")


def _load_decord(path: str, sampling: Sampling, declared: int = 0) -> Frames:
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # failures come back as exceptions, and as error rows
    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    num_frames, fps = len(vr), float(vr.get_avg_fps())
    # decord's get_key_indices counts in decode order, wrong with B-frames; the demux scan is right.
    keys = scan_packets(path)[1] if sampling.kind == "keyframes" else None
    idx = select_indices(num_frames, fps, sampling, keys)
    if len(idx) == 0:
        raise RuntimeError("no frames")
    frames = np.array(vr.get_batch(idx.tolist()).asnumpy())  # decord's array is read-only
    ts = idx / fps if fps > 0 else np.zeros(len(idx))
    num_wanted = len(select_indices(max(num_frames, declared), fps, sampling, keys))
    return Frames(frames, ts.astype(np.float64), idx, fps, "decord", num_wanted=max(num_wanted, len(idx)))


def scan_packets(path: str) -> tuple[int, np.ndarray, float]:
    """(number of frames, display-order indices of the I-frames, fps) from one demux pass, no decoding."""
    num_frames, keys, fps, _ = _scan(path)
    return num_frames, keys, fps


def _scan(path: str) -> tuple[int, np.ndarray, float, np.ndarray | None]:
    """scan_packets, plus every frame's pts in display order (None where packets carry no pts).

    Packets arrive in decode order; with B-frames that differs from display order, so a
    keyframe's index is the rank of its timestamp among all frames' timestamps.
    """
    with _quiet_av().open(path) as container:
        if not container.streams.video:
            raise VideoError(f"no video stream in {path}")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        stamps, is_key, have_pts = [], [], True
        for order, packet in enumerate(container.demux(stream)):
            if packet.size == 0:
                continue
            have_pts &= packet.pts is not None
            stamps.append(packet.pts if packet.pts is not None else (packet.dts if packet.dts is not None else order))
            is_key.append(bool(packet.is_keyframe))
    stamps = np.asarray(stamps, dtype=np.int64)
    display_rank = np.argsort(np.argsort(stamps, kind="stable"), kind="stable")
    keys = np.sort(display_rank[np.asarray(is_key, dtype=bool)]).astype(np.int64)
    unique = have_pts and len(np.unique(stamps)) == len(stamps)
    return len(stamps), keys, fps, (np.sort(stamps) if unique else None)


def _quiet_av():
    """PyAV with FFmpeg's own log lines ("moov atom not found", "partial file") off: what goes wrong
    comes back as exceptions, and reaches the user as error rows and warnings."""
    import av

    av.logging.set_level(None)
    return av


def _declared_frames(path: str) -> int:
    """The frame count the container's header declares (0 when it declares none). A truncated file
    declares more frames than it holds: what the sampling would take from the whole file is what was
    wanted, and getting fewer is worth a warning on the row. Reads the header only."""
    av = _quiet_av()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"no video stream in {path}")
            return int(container.streams.video[0].frames or 0)
    except av.error.FFmpegError as e:
        raise VideoError(f"not a decodable video: {path} ({getattr(e, 'strerror', None) or e})") from None


def _load_pyav(path: str, sampling: Sampling, declared: int = 0) -> Frames:
    num_frames, keys, fps, pts = _scan(path)
    idx = select_indices(num_frames, fps, sampling, keys)
    num_wanted = len(select_indices(max(num_frames, declared), fps, sampling, keys))
    got = None
    if pts is not None and len(keys):
        try:
            got = _decode_seeking(path, idx, keys, pts)
        except _SeekFailed:
            got = None  # an inexact seek or unexpected timestamps: decode from the start instead
    if got is None:
        got = _decode_sequential(path, idx)
    if not got:
        raise VideoError(f"no decodable frames in {path}")
    order = sorted(got)
    times = [got[i][1] if got[i][1] is not None else (i / fps if fps else 0.0) for i in order]
    return Frames(np.stack([got[i][0] for i in order]), np.asarray(times, dtype=np.float64),
                  np.asarray(order, dtype=np.int64), fps, "pyav", num_wanted=max(num_wanted, len(idx)))


class _SeekFailed(Exception):
    pass


def _decode_seeking(path: str, idx: np.ndarray, keys: np.ndarray, pts: np.ndarray) -> dict:
    """{index: (rgb frame, seconds)} for the wanted display indices, jumping to the keyframe before a
    wanted frame whenever that keyframe lies past where decoding has got to: sampling one frame a
    second from a stream with a keyframe every second decodes 1 frame in 25, not all of them."""
    import av

    index_of = {int(p): i for i, p in enumerate(pts)}
    got, pos = {}, -1  # pos: display index of the last frame decoded
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = None
        try:
            for target in idx.tolist():
                key = int(keys[keys <= target].max()) if (keys <= target).any() else 0
                if frames is None or key > pos:
                    container.seek(int(pts[key]), stream=stream, backward=True, any_frame=False)
                    frames, pos = container.decode(stream), -1
                for frame in frames:
                    i = index_of.get(frame.pts)
                    if i is None or (pos == -1 and i > target):
                        raise _SeekFailed  # unknown timestamp, or the seek overshot the wanted frame
                    pos = i
                    if i == target:
                        got[i] = _rgb_and_time(frame)
                    if i >= target:
                        break
        except av.error.InvalidDataError:
            pass  # a truncated stream: keep the frames decoded before the damage
    return got


def _rgb_and_time(frame) -> tuple[np.ndarray, float | None]:
    return frame.to_ndarray(format="rgb24"), None if frame.time is None else float(frame.time)


def _decode_sequential(path: str, idx: np.ndarray) -> dict:
    import av

    wanted, got = set(idx.tolist()), {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    got[i] = _rgb_and_time(frame)
                    if len(got) == len(wanted):
                        break
        except av.error.InvalidDataError:
            pass  # a truncated stream: keep the frames decoded before the damage
    return got
