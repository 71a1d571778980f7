"""Frame -> the images the model sees: a global view, local native-resolution views, or both.

- global: the whole frame padded to a square with the processor's mean colour (as Q-Align does,
  so nothing is cropped away) and resized to the vision tower's input size.
- local: native-resolution detail, where compression and enhancement artifacts live:
  `grid:N`      N crops of the encoder's input size at native resolution, centred on a uniform grid;
  `fragments:G` FAST-VQA-style: a GxG grid of mini-patches (input size / G each) taken at native
  resolution from uniform grid cells and stitched into one image.
- dual: the global view followed by the local views; each is its own image, so the vision tower
  encodes them separately and the language model attends over both sets of tokens.
- frame: the frame as is; the processor resizes (and may centre-crop) it.

Shapes: frames are (H, W, 3) uint8; every view is (S, S, 3) uint8, S the encoder's input size.
"""

from __future__ import annotations

import math

import numpy as np

VIEWS = ("frame", "global", "local", "dual")


def parse_local(spec: str) -> tuple[str, int]:
    kind, _, n = spec.partition(":")
    if kind not in ("grid", "fragments") or not n.isdigit() or int(n) < 1:
        raise ValueError(f"local views must be 'grid:N' or 'fragments:G' (N, G >= 1), got {spec!r}")
    return kind, int(n)


def encoder_input_px(image_processor) -> int:
    """The side of the square the vision tower takes, from the processor's settings."""
    crop = getattr(image_processor, "crop_size", None)
    if crop and getattr(image_processor, "do_center_crop", False):
        return int(crop["height"])
    size = getattr(image_processor, "size", None) or {}
    if "height" in size:
        return int(size["height"])
    if "longest_edge" in size and "shortest_edge" in size and size["longest_edge"] > 4096:  # Qwen-VL: pixel counts
        unit = getattr(image_processor, "patch_size", 14) * getattr(image_processor, "merge_size", 2)
        return max(unit, min(448, int(math.sqrt(size["longest_edge"])) // unit * unit))
    if "longest_edge" in size and "shortest_edge" in size:
        return int(math.sqrt(size["longest_edge"]))
    if "shortest_edge" in size:
        return int(size["shortest_edge"])
    raise ValueError(f"cannot tell the input size of {type(image_processor).__name__} from size={size}")


def mean_colour(image_processor) -> tuple[int, int, int]:
    """The padding colour: the processor's mean in 0-255, truncated, as LLaVA's and Q-Align's expand2square."""
    mean = getattr(image_processor, "image_mean", None) or [0.5, 0.5, 0.5]
    return tuple(int(m * 255) for m in mean[:3])


def global_view(frame: np.ndarray, size_px: int, fill: tuple[int, int, int]) -> np.ndarray:
    """Pad to a square with `fill`, centred, then resize to size_px."""
    from PIL import Image

    h, w = frame.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = frame
    return np.array(Image.fromarray(canvas).resize((size_px, size_px), Image.BICUBIC))  # writable: torch warns otherwise


def _pad_to(frame: np.ndarray, min_px: int, fill) -> np.ndarray:
    h, w = frame.shape[:2]
    if h >= min_px and w >= min_px:
        return frame
    out = np.empty((max(h, min_px), max(w, min_px), 3), np.uint8)
    out[:] = fill
    out[:h, :w] = frame
    return out


def _grid_starts(length: int, window: int, count: int) -> list[int]:
    """`count` window starts spread evenly so the windows cover [0, length)."""
    if count == 1:
        return [(length - window) // 2]
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def centre_crops_square(image_processor) -> bool:
    """Whether the processor resizes the short side and keeps the centre square (CLIP's): then a square of the
    frame's short side, anywhere along the long side, is what it sees of the frame, moved."""
    size = getattr(image_processor, "size", None) or {}
    return bool(getattr(image_processor, "do_center_crop", False)) and "shortest_edge" in size


def spread_squares(frame: np.ndarray, count: int) -> list[np.ndarray]:
    """`count` squares of the frame's short side, spread evenly along its long side from one end to the other
    (one: the centre): video recognition's 3-crop testing, at the frame's own scale."""
    h, w = frame.shape[:2]
    side = min(h, w)
    starts = _grid_starts(max(h, w), side, count)
    return [np.ascontiguousarray(frame[:, s:s + side] if w > h else frame[s:s + side]) for s in starts]


def grid_crops(frame: np.ndarray, size_px: int, count: int, fill) -> list[np.ndarray]:
    """`count` native-resolution crops of size_px, on a rows x cols grid shaped like the frame."""
    frame = _pad_to(frame, size_px, fill)
    h, w = frame.shape[:2]
    rows = max(1, round(math.sqrt(count * h / w)))
    cols = math.ceil(count / rows)
    cells = [(y, x) for y in _grid_starts(h, size_px, rows) for x in _grid_starts(w, size_px, cols)]
    picks = np.linspace(0, len(cells) - 1, count).round().astype(int)  # evenly, when count < rows * cols
    return [np.ascontiguousarray(frame[y:y + size_px, x:x + size_px]) for y, x in (cells[i] for i in picks)]


def fragments(frame: np.ndarray, size_px: int, grid: int, fill) -> np.ndarray:
    """FAST-VQA fragments: from each cell of a grid x grid partition of the frame, the centred
    native-resolution mini-patch of size_px // grid, stitched into one (S, S, 3) image."""
    patch = size_px // grid
    frame = _pad_to(frame, patch * grid, fill)
    h, w = frame.shape[:2]
    out = np.empty((patch * grid, patch * grid, 3), np.uint8)
    for i in range(grid):
        for j in range(grid):
            cy = int((i + 0.5) * h / grid) - patch // 2
            cx = int((j + 0.5) * w / grid) - patch // 2
            cy, cx = min(max(cy, 0), h - patch), min(max(cx, 0), w - patch)
            out[i * patch:(i + 1) * patch, j * patch:(j + 1) * patch] = frame[cy:cy + patch, cx:cx + patch]
    if out.shape[0] != size_px:
        from PIL import Image

        out = np.array(Image.fromarray(out).resize((size_px, size_px), Image.NEAREST))
    return out


def frame_views(frame: np.ndarray, views: str, local: str, size_px: int, fill) -> list[np.ndarray]:
    """The images one frame becomes, in order: [global] | [local ...] | [global, local ...] | [frame]."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
    if views == "frame":
        return [frame]
    out = [global_view(frame, size_px, fill)] if views in ("global", "dual") else []
    if views in ("local", "dual"):
        kind, n = parse_local(local)
        out += grid_crops(frame, size_px, n, fill) if kind == "grid" else [fragments(frame, size_px, n, fill)]
    return out


def views_per_frame(views: str, local: str) -> int:
    if views in ("frame", "global"):
        return 1
    kind, n = parse_local(local)
    return (n if kind == "grid" else 1) + (views == "dual")
