"""Free-text answers about a video's quality, through `generate()`; kept apart from scoring.

The model sees the same keyframes (same sampling) as when scoring. Answers stream token by
token; a chat keeps the history and decodes the video once.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from lmm_vqa import compilation, dual
from lmm_vqa.prompts import read_prompt
from lmm_vqa.scoring import media_items, prompt_placeholders, system_turn


@dataclass
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy, deterministic
    top_p: float = 0.9

    def kwargs(self, tokenizer) -> dict:
        out = {"max_new_tokens": self.max_new_tokens, "do_sample": self.temperature > 0,
               "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None
               else tokenizer.eos_token_id}
        if self.temperature > 0:
            out.update(temperature=self.temperature, top_p=self.top_p)
        else:  # the checkpoint's generation_config may carry sampling defaults; greedy ignores them
            out.update(temperature=None, top_p=None, top_k=None)
        return out


def _adapter_context(model, adapter: str):
    """`adapter="off"` runs the base model of a peft checkpoint; a no-op without an adapter."""
    if adapter not in ("on", "off"):
        raise ValueError(f"adapter must be 'on' or 'off', got {adapter!r}")
    if adapter == "off" and hasattr(model, "disable_adapter"):
        return model.disable_adapter()
    return contextlib.nullcontext()


@dataclass
class Chat:
    """A conversation about one video: frames decoded once, history kept."""

    scorer: object
    frames: np.ndarray  # (T, H, W, 3) uint8
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    adapter: str = "on"
    history: list = field(default_factory=list)  # [(question, answer), ...]

    def __post_init__(self):
        self.images = self.scorer.prompt_images(list(self.frames))  # the scorer's views of every frame

    def messages(self, question: str) -> list[dict]:
        config = self.scorer.config
        turns = system_turn(config)
        media = media_items(config, prompt_placeholders(config, len(self.images)))
        for i, (q, a) in enumerate(self.history + [(question, None)]):
            content = media if i == 0 else []
            turns.append({"role": "user", "content": content + [{"type": "text", "text": q}]})
            if a is not None:
                turns.append({"role": "assistant", "content": [{"type": "text", "text": a}]})
        return turns

    def ask_stream(self, question: str) -> Iterator[str]:
        """Yield the answer's text piece by piece as it is generated; the history grows by one turn."""
        from transformers import TextIteratorStreamer

        scorer = self.scorer
        text = scorer.processor.apply_chat_template(self.messages(question), add_generation_prompt=True,
                                                    tokenize=False)
        inputs = scorer.encode([text], self.images)
        local = inputs.pop(dual.LOCAL_KEY, None)  # the dual encoder's local views
        streamer = TextIteratorStreamer(scorer.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**inputs, streamer=streamer, **self.settings.kwargs(scorer.tokenizer))
        errors = []

        def run():
            try:
                with torch.no_grad(), scorer.answering(), _adapter_context(scorer.model, self.adapter), \
                        dual.feeding(scorer.model, local), compilation.eager(scorer.model):
                    scorer.model.generate(**kwargs)
            except Exception as e:  # re-raised in the caller's thread below
                errors.append(e)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        pieces = []
        for piece in streamer:
            pieces.append(piece)
            yield piece
        worker.join()
        if errors:
            raise errors[0]
        self.history.append((question, "".join(pieces).strip()))

    def ask(self, question: str) -> str:
        for _ in self.ask_stream(question):
            pass
        return self.history[-1][1]


def default_question() -> str:
    return read_prompt("explain")


def start_chat(scorer, video, settings: GenerationSettings | None = None, adapter: str = "on") -> Chat:
    """Decode `video` with the scorer's sampling (raises ValueError for a bad file)."""
    return Chat(scorer, scorer.load(video).frames, settings or GenerationSettings(), adapter)


def score_frames(scorer, frames: np.ndarray) -> dict:
    """The score of already-decoded frames, in the scorer's mode (see `Scorer.score_frames`)."""
    return scorer.score_frames(frames)
