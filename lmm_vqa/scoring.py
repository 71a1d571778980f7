"""Scorer: video -> keyframes -> prompt -> level log-probabilities -> score.

The score is Q-Align's: the probabilities of the level words as the next tokens after
"The quality of the video is", renormalised over the levels, dotted with the level values.
Level words that are several tokens are scored exactly, as the product of their tokens'
conditional probabilities, continuing from the prompt's KV cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from lmm_vqa import dual
from lmm_vqa.backbones import family_of
from lmm_vqa.levels import DEFAULT_LEVELS, LevelSet, pool_frames, score_from_probs
from lmm_vqa.models import cache_keyword
from lmm_vqa.prompts import load_scoring_prompt
from lmm_vqa.video import Frames, Sampling, load_frames, qwen_video_resize, shrink
from lmm_vqa.views import (VIEWS, centre_crops_square, encoder_input_px, frame_views, mean_colour, spread_squares,
                           views_per_frame)

SCORER_FILE = "scorer.json"


@dataclass
class ScorerConfig:
    """Settings that travel with a checkpoint as `scorer.json`; CLI flags override them."""

    mode: str = "frame"  # "frame": each keyframe its own prompt, probabilities averaged; "clip": all in one prompt
    frames: str = "fps:1"  # keyframe sampling: fps:F | uniform:N | keyframes
    max_frames: int = 16  # cap on keyframes per video
    max_side_px: int = 0  # video frames longer than this on their long side are scaled down to it first (0: never)
    prompt: str | None = None  # a prompts/ name or file; None: score_frame or score_clip by mode
    question: str | None = None  # explicit prompt text; set from `prompt` when None
    answer_prefix: str | None = None
    levels: dict = field(default_factory=DEFAULT_LEVELS.to_json)  # {word: value}, worst to best
    views: str = "frame"  # frame (as is) | global (padded square) | local | dual (global + local), see views.py
    local_views: str = "grid:4"  # local views: grid:N native-resolution crops | fragments:G (FAST-VQA)
    # views: frame with a processor that keeps the centre square (CLIP's): score this many squares of the short
    # side spread along the long side, each its own prompt, their probabilities averaged (1: the centre only)
    crops: int = 1
    # shared: one vision tower, every view its own image in the prompt, the LM attends over all their tokens;
    # dual: HIVE's dual encoder (dual.py), local views through their own encoder, fused into the global view's
    # tokens before the LM (needs views: dual and a checkpoint trained with it)
    encoder: str = "shared"
    images_first: bool = True  # the user turn: images, then the question (Q-SiT: the question, then the image)
    # still images asked about otherwise than videos (OneAlign's clip mode: its video prompt for videos, its
    # image prompt for images): a prompts/ name or file, or {"question": ..., "answer_prefix": ...}; None: as videos
    image_prompt: str | dict | None = None
    template_kwargs: dict = field(default_factory=dict)  # more chat-template variables, e.g. {"add_vision_id": true}
    system_prompt: str | None = None  # a system turn before the question (None: the chat template's default)
    # clip mode: hand the keyframes to the processor as one video (Qwen-VL's video input: frames in pairs, with
    # time positions), resized as qwen-vl-utils resizes videos, instead of as separate images (VQ-Insight)
    video_input: bool = False
    # "levels": the level words' probabilities after the answer's start (Q-Align). "answer": the model writes
    # its answer (reasoning models) and a number is read from it (answers.py), on `answer_range`'s scale.
    method: str = "levels"
    answer_pattern: str = r"<answer>(.*?)</answer>"  # where the number is (no match: the whole text)
    answer_match: str = "last"  # which match of answer_pattern holds it: last (VisualQuality-R1) | first (VQ-Insight)
    answer_range: list = field(default_factory=lambda: [1, 5])  # the number's scale, e.g. [1, 5] or [0, 100]
    generation: dict = field(default_factory=dict)  # max_new_tokens, do_sample, temperature, top_p, top_k, seed
    samples: int = 1  # answers per prompt, averaged (more than one needs do_sample)

    def __post_init__(self):
        if self.mode not in ("frame", "clip"):
            raise ValueError(f"mode must be 'frame' or 'clip', got {self.mode!r}")
        Sampling.parse(self.frames, self.max_frames)  # validate early
        if self.views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {self.views!r}")
        views_per_frame(self.views, self.local_views)  # validates local_views
        if self.crops < 1:
            raise ValueError(f"crops must be at least 1, got {self.crops}")
        if self.crops > 1 and (self.views != "frame" or self.mode != "frame" or self.method != "levels"):
            raise ValueError(f"crops scores squares of each frame apart: it needs views: frame, mode: frame and "
                             f"method: levels, got views: {self.views}, mode: {self.mode}, method: {self.method}")
        if self.encoder not in ("shared", "dual"):
            raise ValueError(f"encoder must be 'shared' or 'dual', got {self.encoder!r}")
        if self.encoder == "dual" and self.views != "dual":
            raise ValueError(f"encoder: dual encodes global and local views apart, so it needs views: dual, "
                             f"got views: {self.views}")
        LevelSet.from_json(self.levels)
        if self.video_input and (self.mode != "clip" or self.views != "frame"):
            raise ValueError("video_input hands a video's keyframes to the model as one video: it needs mode: clip "
                             f"and views: frame, got mode: {self.mode}, views: {self.views}")
        if self.answer_match not in ("first", "last"):
            raise ValueError(f"answer_match must be 'first' or 'last', got {self.answer_match!r}")
        if self.method not in ("levels", "answer"):
            raise ValueError(f"method must be 'levels' or 'answer', got {self.method!r}")
        if self.method == "answer":
            from lmm_vqa.answers import check_answer_settings

            check_answer_settings(self)
        if self.image_prompt:
            image_prompt_texts(self.image_prompt)  # it exists and is complete
        if self.question is None or self.answer_prefix is None:
            p = load_scoring_prompt(self.prompt or f"score_{self.mode}")
            self.question = p.question if self.question is None else self.question
            self.answer_prefix = p.answer_prefix if self.answer_prefix is None else self.answer_prefix

    @classmethod
    def load(cls, folder: str | os.PathLike | None, defaults: dict | None = None, **overrides) -> "ScorerConfig":
        """scorer.json from `folder` when present (else `defaults`, a preset's settings), then the non-None
        overrides on top."""
        values = dict(defaults or {})
        path = Path(folder) / SCORER_FILE if folder is not None else None
        if path is not None and path.is_file():
            values = json.loads(path.read_text())
            unknown = set(values) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "prompt" in overrides:  # the prompt asked for, for videos and images alike
            values.pop("question", None), values.pop("answer_prefix", None), values.pop("image_prompt", None)
        values.update(overrides)
        return cls(**values)

    def save(self, folder: str | os.PathLike) -> None:
        """Write scorer.json. The prompt text is stored only where it is not the named (or the
        mode's default) prompt file's, so a later mode override still picks the matching prompt."""
        values = asdict(self)
        named = load_scoring_prompt(self.prompt or f"score_{self.mode}")
        if (named.question, named.answer_prefix) == (self.question, self.answer_prefix):
            del values["question"], values["answer_prefix"]
        (Path(folder) / SCORER_FILE).write_text(json.dumps(values, indent=2) + "\n")


def image_prompt_texts(image_prompt: str | dict) -> tuple[str, str]:
    """(question, answer prefix) of an `image_prompt` setting: a prompt's name or file, or the two texts
    (which keep any leading space, as Q-ReAlign's stems have one)."""
    if isinstance(image_prompt, dict):
        if set(image_prompt) != {"question", "answer_prefix"}:
            raise ValueError(f"image_prompt needs exactly 'question' and 'answer_prefix', got {sorted(image_prompt)}")
        return image_prompt["question"], image_prompt["answer_prefix"]
    p = load_scoring_prompt(image_prompt)
    return p.question, p.answer_prefix


def resolve_level_tokens(tokenizer, answer_prefix: str, words: Iterable[str]) -> list[list[int]]:
    """Token ids of each level word as it follows `answer_prefix` in an answer.

    Tokenises the prefix alone and the prefix followed by " word", both without special tokens,
    and keeps what the word adds: right for tokenizers with a BOS token (Llama) and without (Qwen),
    and for words that are several tokens. A prefix that ends in whitespace (Q-SiT's "... is ") ends on
    that whitespace's own token, so the word is tokenised bare, as Q-SiT takes it.
    """
    if answer_prefix.endswith((" ", "\n")):  # the prefix's own whitespace token comes first: the word starts bare
        return [tokenizer(word, add_special_tokens=False)["input_ids"] for word in words]
    prefix_ids = tokenizer(answer_prefix, add_special_tokens=False)["input_ids"]
    out = []
    for word in words:
        ids = tokenizer(f"{answer_prefix} {word}", add_special_tokens=False)["input_ids"]
        if ids[: len(prefix_ids)] != prefix_ids or len(ids) == len(prefix_ids):
            raise ValueError(f"cannot isolate the tokens of level word {word!r} after {answer_prefix!r}: "
                             f"the tokenizer merges them across the boundary ({prefix_ids} vs {ids})")
        out.append(ids[len(prefix_ids):])
    return out


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def system_turn(config: ScorerConfig) -> list[dict]:
    """The config's system turn, as a message list ([] for the chat template's default)."""
    return [{"role": "system", "content": [{"type": "text", "text": config.system_prompt}]}] if config.system_prompt else []


def media_items(config: ScorerConfig, num_images: int) -> list[dict]:
    """The user turn's visual items: one per image, or one video for them all with `video_input`."""
    if config.video_input and num_images:
        return [{"type": "video"}]
    return [{"type": "image"} for _ in range(num_images)]


def render_prompt(processor, num_images: int, config: ScorerConfig, question: str | None = None,
                  answer_prefix: str | None = None) -> str:
    """The chat-templated user turn (the images, then the question; the other way round with
    `images_first: false`; one video item for them all with `video_input`), after the config's system turn if it
    has one, and the start of the answer (`question`, `answer_prefix`: the config's unless
    given), with the config's `template_kwargs`. For level words thinking is off (`enable_thinking=False`,
    where the template has that switch): the level word must follow the answer's start, as in Q-ReAlign's
    scorer."""
    question = config.question if question is None else question
    answer_prefix = config.answer_prefix if answer_prefix is None else answer_prefix
    images = media_items(config, num_images)
    text = [{"type": "text", "text": question}]
    content = images + text if config.images_first else text + images
    template = processor.chat_template if isinstance(processor.chat_template, str) else ""
    thinking = {"enable_thinking": False} if config.method == "levels" and "enable_thinking" in template else {}
    rendered = processor.apply_chat_template(system_turn(config) + [{"role": "user", "content": content}],
                                             add_generation_prompt=True, tokenize=False,
                                             **{**thinking, **config.template_kwargs})
    if not answer_prefix:
        return rendered
    return rendered + ("" if rendered.endswith((" ", "\n")) else " ") + answer_prefix


def view_geometry(processor, config: ScorerConfig) -> tuple[int, tuple[int, int, int]]:
    """(encoder input side in px, padding colour) for building the config's views."""
    size_px = encoder_input_px(processor.image_processor) if config.views != "frame" else 0
    return size_px, mean_colour(processor.image_processor)


def prompt_images(frames, config: ScorerConfig, size_px: int, fill) -> list[np.ndarray]:
    """Every frame's views, frame by frame: [global, local...] per frame with views: dual. With `video_input`,
    one item: the frames as one (T, H, W, 3) video."""
    if config.video_input:
        return [np.stack(list(frames))]
    return [v for f in frames for v in frame_views(f, config.views, config.local_views, size_px, fill)]


def images_per_prompt(frames, config: ScorerConfig, size_px: int, fill) -> list[list[np.ndarray]]:
    """Each prompt's images: one prompt of every frame's views in clip mode, one prompt per frame
    in frame mode (per square of each frame, frame by frame, with `crops`)."""
    frames = list(frames)
    if config.crops > 1:
        frames = [sq for f in frames for sq in spread_squares(f, config.crops)]
    groups = [frames] if config.mode == "clip" else [[f] for f in frames]
    return [prompt_images(g, config, size_px, fill) for g in groups]


def prompt_placeholders(config: ScorerConfig, num_images: int) -> int:
    """How many images the prompt text names: all of them, or one per frame with the dual encoder
    (whose local views go to the forward pass apart, see `processor_inputs`)."""
    return num_images // views_per_frame(config.views, config.local_views) if config.encoder == "dual" else num_images


def processor_inputs(processor, config: ScorerConfig, texts: list[str], images: list, **kwargs) -> dict:
    """The processor's output for prompts and their images; with the dual encoder, the local views
    are preprocessed apart, under inputs["local_views"]."""
    if config.video_input:  # one video per prompt (prompt_images)
        videos = [_as_video(v) for v in images]
        sampling = Sampling.parse(config.frames, config.max_frames)
        fps = sampling.value if sampling.kind in ("fps", "qwen") else 2.0  # the time between the frames
        return dict(processor(text=texts, videos=videos, return_tensors="pt", padding=True, fps=fps, **kwargs))
    if config.encoder != "dual":
        return dict(processor(text=texts, images=images, return_tensors="pt", padding=True, **kwargs))
    glob, local = dual.split_views(images, views_per_frame(config.views, config.local_views))
    inputs = dict(processor(text=texts, images=glob, return_tensors="pt", padding=True, **kwargs))
    inputs[dual.LOCAL_KEY] = dict(processor.image_processor(images=local, return_tensors="pt", **kwargs))
    return inputs


def _as_video(video) -> torch.Tensor:
    """A (T, H, W, 3) array, or a (T, 3, H, W) tensor from `chw_tensors`, as a (T, 3, H, W) float tensor of
    0-255 values, as qwen-vl-utils hands videos to the processor (whose resizing then does not round to whole
    grey levels, as it would for uint8)."""
    if isinstance(video, torch.Tensor):
        return video.float()
    return torch.from_numpy(video).permute(0, 3, 1, 2).float()


def chw_tensors(images: list, device) -> list[torch.Tensor]:
    """(H, W, 3) uint8 arrays (or tensors, see `pinned`) -> (3, H, W) uint8 tensors on `device`, uploaded as
    they are and made channel-first there. Handing the processor arrays instead makes it do that reordering
    copy on the CPU, one image at a time, and the GPU waited for it (measured: docs/benchmarks.md). Pinned
    tensors upload without blocking the calling thread."""
    tensors = [im if isinstance(im, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(im)) for im in images]
    return [t.to(device, non_blocking=t.is_pinned()).movedim(-1, -3) for t in tensors]  # videos too


def pinned(image: np.ndarray) -> torch.Tensor:
    """An image (or a (T, H, W, 3) video) copied into page-locked memory, ready for an upload that does not hold
    up the thread that launches it (a 1280x720 frame from pageable memory: ~0.5 ms of that thread's time)."""
    return torch.from_numpy(np.ascontiguousarray(image)).pin_memory()


def _tensors(inputs: dict):
    for v in inputs.values():
        yield from (_tensors(v) if isinstance(v, dict) else [v])


def inputs_to(inputs: dict, device, dtype) -> dict:
    """Tensors to `device`, floating ones also to `dtype`; one level of nesting (the local views)."""
    def move(v):
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        return v.to(device, dtype) if v.is_floating_point() else v.to(device)

    return {k: move(v) for k, v in inputs.items()}


def level_word_logprobs(model, inputs: dict, level_ids: list[list[int]], mrope: bool,
                        use_cache: bool = True) -> torch.Tensor:
    """log P(word | prompt) for each row and level word: (B, L) float32, not renormalised.
    `inputs` may hold the dual encoder's local views (see `processor_inputs`).

    The first token of every word comes from one forward pass (last position only). A word of
    several tokens adds the log-probabilities of its later tokens: with `use_cache`, by continuing
    from the prompt's KV cache (scoring); without, by re-running the prompt with the word's tokens
    appended (training, where gradient checkpointing turns the cache off). Differentiable when
    called under autograd.
    """
    inputs = dict(inputs)
    with dual.feeding(model, inputs.pop(dual.LOCAL_KEY, None)):
        return _level_word_logprobs(model, inputs, level_ids, mrope, use_cache and rewindable_cache(model))


def rewindable_cache(model) -> bool:
    """Whether the model's KV cache can be cut back after a word's later tokens were tried: not where
    layers keep a recurrent state (Qwen3.5's linear attention), which re-run the prompt instead."""
    text = dual.inner_model(model).config.get_text_config()
    return all(t in ("full_attention", "sliding_attention") for t in getattr(text, "layer_types", None) or ())


_INDEX_CACHE: dict = {}


def _on_device(ids: list[int], device) -> torch.Tensor:
    """A long tensor of `ids` on `device`, made once: copying a new one from the CPU each batch would
    make the host wait for the GPU (a blocking copy), and the next batch could not be prepared meanwhile."""
    key = (tuple(ids), str(device))
    if key not in _INDEX_CACHE:
        with torch.inference_mode(False):  # a normal tensor: training indexes with it under autograd too
            _INDEX_CACHE[key] = torch.tensor(ids, device=device)
    return _INDEX_CACHE[key]


def _level_word_logprobs(model, inputs, level_ids, mrope, use_cache):
    mask = inputs["attention_mask"]
    extra = {} if mrope else {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
    exact = any(len(ids) > 1 for ids in level_ids)
    out = model(**inputs, **extra, use_cache=use_cache and exact, logits_to_keep=1)
    logp = out.logits[:, -1].float().log_softmax(-1)  # (B, V)
    total = logp[:, _on_device([ids[0] for ids in level_ids], logp.device)]  # (B, L)
    if not exact:
        return total
    length, batch = mask.shape[1], mask.shape[0]
    cache = getattr(out, cache_keyword()) if use_cache else None
    deltas = getattr(dual.inner_model(model), "rope_deltas", None) if mrope else None
    later = []  # (B,) log-probs of each word's later tokens
    for ids in level_ids:
        if len(ids) == 1:
            later.append(total.new_zeros(batch))
            continue
        rest = _on_device(ids, mask.device)
        steps = len(ids) - 1
        ext_mask = torch.cat([mask, mask.new_ones(batch, steps)], dim=1)
        new_ids = rest[:-1].expand(batch, steps)
        if cache is not None:
            pos = (ext_mask.cumsum(-1) - 1)[:, length:]  # (B, steps): real-token positions, padding skipped
            if deltas is not None:
                pos = pos[None] + deltas  # M-RoPE: text positions shifted past the vision grid, (1, B, steps)
            step = model(input_ids=new_ids, attention_mask=ext_mask, position_ids=pos, use_cache=True,
                         cache_position=torch.arange(length, length + steps, device=mask.device),
                         **{cache_keyword(): cache})
            cache.crop(-steps)  # back to the prompt alone for the next word
        else:
            ext = {**inputs, "input_ids": torch.cat([inputs["input_ids"], new_ids], 1), "attention_mask": ext_mask}
            if "mm_token_type_ids" in ext:  # Qwen processors mark image tokens; the word's tokens are text
                ext["mm_token_type_ids"] = torch.cat([ext["mm_token_type_ids"], new_ids * 0], 1)
            if not mrope:
                ext["position_ids"] = (ext_mask.cumsum(-1) - 1).clamp(min=0)
            step = model(**ext, use_cache=False, logits_to_keep=steps)
        step_logp = step.logits[:, -steps:].float().log_softmax(-1)  # (B, steps, V)
        later.append(step_logp[:, _on_device(list(range(steps)), mask.device), rest[1:]].sum(-1))
    return total + torch.stack(later, -1)


class Scorer:
    def __init__(self, model, processor, config: ScorerConfig, name: str = ""):
        self.model = model.eval()
        self.processor = processor
        self.config = config
        self.name = name
        self.levels = LevelSet.from_json(config.levels)
        self.sampling = Sampling.parse(config.frames, config.max_frames)
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"  # the answer position is the last one in every row
        self.level_ids, self.exact = [], False
        if config.method == "levels":
            self.level_ids = resolve_level_tokens(self.tokenizer, config.answer_prefix, self.levels.words)
            firsts = [ids[0] for ids in self.level_ids]
            # Exact whole-word probabilities are needed when a word is several tokens or two words share
            # a first token; otherwise the first token's probability is already the word's.
            self.exact = any(len(ids) > 1 for ids in self.level_ids) or len(set(firsts)) < len(firsts)
        self.mrope = family_of(dual.inner_model(model).config).mrope  # M-RoPE families keep their text offsets
        self.view_size_px, self.view_fill = view_geometry(processor, config)
        if config.crops > 1 and not centre_crops_square(processor.image_processor):
            raise ValueError(f"crops: {type(processor.image_processor).__name__} does not resize the short side "
                             "and keep the centre square, so it already sees more than one square; use crops: 1")
        self._prep_stream = None  # CUDA stream for preprocessing, made on first use
        self.pin_frames = _model_device(model).type == "cuda"  # decoded frames go to page-locked memory
        self._prompts = {}  # (images, question, answer prefix) -> rendered scoring prompt
        self.image_texts = None  # (question, answer prefix) for still images, where they differ
        if config.image_prompt:
            self.image_texts = image_prompt_texts(config.image_prompt)
            if config.method == "levels" and resolve_level_tokens(self.tokenizer, self.image_texts[1],
                                                                  self.levels.words) != self.level_ids:
                raise ValueError(f"image_prompt {config.image_prompt!r}: after its answer start the level words "
                                 "tokenise differently than after the video prompt's; use one prompt for both")

    # ------------------------------------------------------------------ prompts

    def render_prompt(self, num_images: int, question: str | None = None, answer_prefix: str | None = None) -> str:
        return render_prompt(self.processor, num_images, self.config, question or None, answer_prefix)

    def prompt_for(self, images: list, still: bool = False) -> str:
        """The scoring prompt for one prompt's images (as `prompt_images` gives them); it depends only
        on their number (and, with an `image_prompt`, on whether they come from a still image), so each
        is rendered once (the chat template is slow to run per frame)."""
        n = prompt_placeholders(self.config, len(images))
        question, prefix = self.image_texts if still and self.image_texts else (None, None)
        key = (n, question, prefix)
        if key not in self._prompts:
            self._prompts[key] = self.render_prompt(n, question, prefix)
        return self._prompts[key]

    def prompt_images(self, frames) -> list[np.ndarray]:
        """The images of one prompt: each frame's views, frame by frame."""
        return prompt_images(frames, self.config, self.view_size_px, self.view_fill)

    def images_per_prompt(self, frames) -> list[list[np.ndarray]]:
        """Each prompt's images for a video's frames, by the scorer's mode (see `images_per_prompt`)."""
        return images_per_prompt(frames, self.config, self.view_size_px, self.view_fill)

    def encode(self, texts: list[str], images: list[np.ndarray]) -> dict:
        device, dtype = _model_device(self.model), self.model.dtype
        # On a GPU the image processor resizes and normalises there: the CPU only uploads uint8 frames.
        if device.type != "cuda":
            return inputs_to(processor_inputs(self.processor, self.config, texts, images), device, dtype)
        # Preprocessing runs on its own CUDA stream: its uploads (blocking copies, which wait for every
        # kernel queued before them on their stream) then do not wait for the forward pass in flight.
        if self._prep_stream is None:
            self._prep_stream = torch.cuda.Stream(device)
        with torch.cuda.stream(self._prep_stream):
            inputs = inputs_to(processor_inputs(self.processor, self.config, texts, chw_tensors(images, device),
                                                device=device), device, dtype)
        main = torch.cuda.current_stream(device)
        main.wait_stream(self._prep_stream)  # the forward pass starts once the inputs are ready
        for t in _tensors(inputs):
            t.record_stream(main)  # made on one stream, used on another: keep the memory until then
        return inputs

    # ------------------------------------------------------------------ the core

    @torch.inference_mode()
    def level_logprobs(self, inputs: dict) -> torch.Tensor:
        """log P(level word | prompt) for each row and level: (B, L) float32, not renormalised."""
        return level_word_logprobs(self.model, inputs, self.level_ids, self.mrope, use_cache=self.exact)

    def level_probs(self, texts: list[str], images: list[np.ndarray]) -> np.ndarray:
        """(B, L) probabilities over the levels for a batch of rendered prompts."""
        return self.start_level_probs(texts, images)()

    def start_level_probs(self, texts: list[str], images: list[np.ndarray]) -> Callable[[], np.ndarray]:
        """Preprocess a batch and launch its forward pass without waiting for the GPU; the returned
        function waits and gives level_probs' result. Scoring prepares batch N+1 meanwhile."""
        with torch.inference_mode():
            probs = self.level_logprobs(self.encode(texts, images)).softmax(-1)
        return lambda: probs.cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ videos

    def load(self, path) -> Frames:
        decoded = load_frames(path, self.sampling)
        if decoded.decoder != "image" and self.config.max_side_px:
            decoded.frames = shrink(decoded.frames, self.config.max_side_px)
        if self.config.video_input:  # frames go in pairs: an odd count repeats its last, as qwen-vl-utils pads
            frames = qwen_video_resize(decoded.frames)
            decoded.frames = np.concatenate([frames, frames[-1:]]) if len(frames) % 2 else frames
        return decoded

    def explain(self, video, question: str | None = None, **generation) -> str:
        """A free-text answer about `video` (default question: prompts/explain.txt)."""
        from lmm_vqa.explain import GenerationSettings, default_question, start_chat

        return start_chat(self, video, GenerationSettings(**generation)).ask(question or default_question())

    def explain_stream(self, video, question: str | None = None, **generation) -> Iterator[str]:
        """Like `explain`, yielding the answer piece by piece as it is generated."""
        from lmm_vqa.explain import GenerationSettings, default_question, start_chat

        return start_chat(self, video, GenerationSettings(**generation)).ask_stream(question or default_question())

    def score_video(self, path, batch_size: int = 8) -> dict:
        """One result row for one video (or image); never raises for a bad input."""
        return next(self.score_paths([path], batch_size=batch_size))

    def score_paths(self, paths: Iterable, batch_size: int = 8, num_workers: int = 2,
                    progress: Callable[[int, int, int], None] | None = None) -> Iterator[dict]:
        """Result rows in input order. Decoding runs ahead in threads while the model works (an item may also
        be a (path, Frames) pair from `load`, decoded already);
        in frame mode, frames of consecutive videos share batches. `progress(index, done, total)`, if given,
        hears of each video's prompts (keyframes in frame mode, 1 in clip mode): total once it is decoded,
        with done 0, then done as batches finish."""
        state = _BatchState(progress)
        with ThreadPoolExecutor(max(1, num_workers)) as pool:
            for row, decoded, images, started in self._decode_ahead(pool, paths, lookahead=max(2, 2 * num_workers)):
                state.add(row, decoded, started, images)
                yield from self._run_batches(state, batch_size, final=False)
            yield from self._run_batches(state, batch_size, final=True)

    def _decode_ahead(self, pool, paths, lookahead):
        """(row, frames or None, each prompt's images, start time) in input order, decoding up to
        `lookahead` videos ahead. The workers also build the views (padding and resizing a 720p frame
        takes ~20 ms), so that work runs in parallel rather than in the thread that feeds the GPU."""
        def work(item):
            started = time.perf_counter()
            path, decoded = item if isinstance(item, tuple) else (item, None)  # (path, Frames): decoded already
            row = {"path": str(path), "status": "ok", "error": ""}
            try:
                decoded = decoded if decoded is not None else self.load(path)
            except ValueError as e:
                row.update(status="error", error=str(e))
                return row, None, [], started
            images = self.images_per_prompt(decoded.frames)
            if self.pin_frames:  # here, in the worker, rather than in the thread that feeds the GPU
                images = [[pinned(im) for im in ims] for ims in images]
            return row, decoded, images, started

        queue = []
        for path in paths:
            queue.append(pool.submit(work, path))
            if len(queue) > lookahead:
                yield queue.pop(0).result()
        for fut in queue:
            yield fut.result()

    def _run_batches(self, state: "_BatchState", batch_size: int, final: bool) -> Iterator[dict]:
        """Run full batches (every queued item when `final`), then yield the rows now complete.
        One batch stays in flight: batch N+1 is preprocessed and launched before batch N's result is
        collected, so the GPU does not wait for the CPU between batches."""
        while state.items and (len(state.items) >= batch_size or final):
            batch = state.take(batch_size)
            prompts = []  # (text, images) per item
            for vid, item in batch:
                images = state.images[vid][item]
                prompts.append((self.prompt_for(images, still=state.videos[vid][1].decoder == "image"), images))
            try:
                started = self.start_level_probs([t for t, _ in prompts], [im for _, ims in prompts for im in ims])
            except (ValueError, RuntimeError):
                started = None  # retried prompt by prompt when collected
            self._collect(state)
            state.in_flight = (batch, prompts, started)
        if final:
            self._collect(state)
        for row, decoded, results, started in state.pop_complete():
            if decoded is None:
                row["seconds"] = round(time.perf_counter() - started, 3)
                yield row
            else:
                yield self._finish(row, decoded, results, started)

    def _collect(self, state: "_BatchState") -> None:
        """Wait for the batch in flight, if any, and record its results."""
        if state.in_flight is None:
            return
        (batch, prompts, started), state.in_flight = state.in_flight, None
        try:
            out = list(started()) if started is not None else None
        except (ValueError, RuntimeError):  # an error the GPU reports only when waited for
            out = None
        if out is None:
            out = self._probs_or_errors(prompts)
        for (vid, frame), p in zip(batch, out):
            state.done(vid, frame, p)

    def _probs_or_errors(self, prompts: list[tuple[str, list]]) -> list:
        """Level probabilities (L,) per prompt; where a batch fails, each prompt is retried alone so
        one bad input does not fail its batch-mates, and its own exception takes its place."""
        try:
            return list(self.level_probs([t for t, _ in prompts], [im for _, ims in prompts for im in ims]))
        except (ValueError, RuntimeError) as e:  # an image the processor cannot take, out of memory, ...
            if len(prompts) == 1:
                return [e]
            return [self._probs_or_errors([p])[0] for p in prompts]

    def frames_results(self, frames: np.ndarray):
        """`level_probs` for already-decoded frames, prompted in the scorer's mode, in one batch."""
        per_prompt = self.images_per_prompt(frames)
        return self.level_probs([self.prompt_for(im) for im in per_prompt], [i for im in per_prompt for i in im])

    def score_frames(self, frames: np.ndarray) -> dict:
        """The level-token score of already-decoded frames, in the scorer's mode: summarise's fields."""
        return self.summarise(self.frames_results(frames).mean(0))

    def summarise(self, level_probs: np.ndarray) -> dict:
        """(L,) level probabilities -> {"score", "score_01", "levels": {word: p}} (more for HIVE)."""
        score = score_from_probs(level_probs, self.levels)
        return {"score": score, "score_01": float(self.levels.normalise(score)),
                "levels": {w: float(x) for w, x in zip(self.levels.words, level_probs)}}

    extra_columns: tuple[str, ...] = ()  # result columns beyond score, score_01 and p_<level>
    explain_with: str | None = None  # the adapter that answers in words, where a checkpoint holds several

    def answering(self):
        """A context for generate(): the model as it answers in words (see HiveScorer)."""
        return contextlib.nullcontext()

    def _finish(self, row, decoded: Frames, frame_probs: list, started: float) -> dict:
        errors = [p for p in frame_probs if isinstance(p, Exception)]
        row["num_frames"] = len(decoded.frames)
        row["warning"] = decoded.warning
        if errors:
            row.update(status="error", error=f"model failed: {errors[0]}")
        else:
            per_frame = np.stack(frame_probs)  # (T, L), or (1, L) in clip mode
            if self.config.crops > 1:  # (T * crops, L), frame by frame: each frame's squares averaged
                per_frame = per_frame.reshape(-1, self.config.crops, per_frame.shape[-1]).mean(1)
            summary = self.summarise(pool_frames(per_frame, np.ones((1, len(per_frame))))[0])
            levels = summary.pop("levels")
            row.update({k: round(v, 6) for k, v in summary.items()})
            row.update({f"p_{w}": round(x, 6) for w, x in levels.items()})
            if self.config.mode == "frame":
                row["frame_scores"] = [round(self.summarise(q)["score"], 6) for q in per_frame]
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row


class _BatchState:
    """Videos in flight, in input order, and their (video, frame) items waiting for the model."""

    def __init__(self, progress=None):
        self.progress = progress  # (vid, done, total) -> None, or None
        self.videos: dict[int, tuple] = {}  # vid -> (row, frames or None, started); dicts keep order
        self.results: dict[int, list] = {}  # vid -> per-item results, by frame
        self.images: dict[int, list] = {}  # vid -> per-item (prompt) images
        self.todo: dict[int, int] = {}  # vid -> items not yet run
        self.items: list[tuple[int, int]] = []
        self.in_flight = None  # (batch, prompts, function that waits for the result) of the batch launched last
        self.next_vid = 0

    def add(self, row, decoded, started, images: list[list]):
        """A decoded video (None: it failed) and its prompts' images (one list per prompt)."""
        vid, self.next_vid = self.next_vid, self.next_vid + 1
        self.videos[vid] = (row, decoded, started)
        self.images[vid] = images
        num_items = len(images) if decoded is not None else 1
        self.results[vid] = [None] * num_items
        self.todo[vid] = 0 if decoded is None else num_items
        if decoded is not None:
            self.items.extend((vid, i) for i in range(num_items))
            if self.progress:
                self.progress(vid, 0, num_items)

    def take(self, n):
        batch, self.items = self.items[:n], self.items[n:]
        return batch

    def done(self, vid, frame, result):
        self.results[vid][frame] = result
        self.todo[vid] -= 1
        if self.progress:
            total = len(self.results[vid])
            self.progress(vid, total - self.todo[vid], total)

    def pop_complete(self):
        while self.videos and self.todo[next(iter(self.videos))] == 0:
            vid = next(iter(self.videos))
            row, decoded, started = self.videos.pop(vid)
            del self.todo[vid], self.images[vid]
            yield row, decoded, self.results.pop(vid), started
