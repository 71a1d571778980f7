"""Scores read from the model's written answer, for quality models that reason before they rate.

VisualQuality-R1 and its kind are trained to think, then write a number in `<answer>...</answer>`
(1-5, or 0-100). With `method: answer` in the scoring settings the model generates (batched, greedy
unless `generation` says `do_sample`, at most `max_new_tokens`), the number is read the authors' way
(the last match of `answer_pattern`, or the first with `answer_match: first`, else the whole text; its first
number), and mapped onto the same
columns as level scores: `score` (1-5) and `score_01` (0-1). The reasoning is kept in `rationale`. An
answer with no number, or one outside `answer_range`, makes the row an error that quotes what came back.
`samples` > 1 averages several sampled answers per prompt; frame mode averages the frames' numbers.
"""

from __future__ import annotations

import re
import time

import numpy as np
import torch

from lmm_vqa.scoring import Scorer, ScorerConfig

NUMBER = re.compile(r"\d+(\.\d+)?")  # VisualQuality-R1's: an unsigned decimal number
THOUGHT = re.compile(r"<think>(.*?)</think>", re.DOTALL)
GENERATION_KEYS = {"max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "seed"}


class AnswerError(ValueError):
    """An answer that gives no usable score; the message quotes it."""


def check_answer_settings(config: ScorerConfig) -> None:
    unknown = set(config.generation) - GENERATION_KEYS
    if unknown:
        raise ValueError(f"generation: unknown settings {sorted(unknown)}; known: {sorted(GENERATION_KEYS)}")
    low, high = config.answer_range
    if not low < high:
        raise ValueError(f"answer_range must be [low, high] with low < high, got {config.answer_range}")
    if config.samples < 1 or (config.samples > 1 and not config.generation.get("do_sample")):
        raise ValueError(f"samples: {config.samples} needs samples >= 1, and do_sample for more than one "
                         "(greedy answers would all be the same)")
    re.compile(config.answer_pattern)


def _quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def read_answer(text: str, pattern: str, low: float, high: float, match: str = "last") -> tuple[float, str]:
    """(number, rationale) from a generated text, or AnswerError saying what came back. `match`: which match
    of `pattern` holds the answer, the first or the last."""
    matches = re.findall(pattern, text, re.DOTALL)
    chosen = (matches[0] if match == "first" else matches[-1]) if matches else None
    answer = (chosen if isinstance(chosen, str) else chosen[0]).strip() if matches else text.strip()
    number = NUMBER.search(answer)
    if number is None:
        raise AnswerError(f"no number in the model's answer: {_quote(text)}")
    value = float(number.group())
    if not low <= value <= high:
        raise AnswerError(f"the model's answer {value:g} is outside {low:g}-{high:g}: {_quote(text)}")
    thoughts = THOUGHT.findall(text)
    rationale = thoughts[-1].strip() if thoughts else re.sub(pattern, "", text, flags=re.DOTALL).strip()
    return value, rationale


class AnswerScorer(Scorer):
    """A Scorer whose per-prompt result is the model's answer read as a number, not level probabilities.
    Batching, decoding ahead, resuming and the rows are Scorer's; `start_level_probs` and `level_probs`
    give, per prompt, (numbers, rationale) or the AnswerError of an answer that could not be read."""

    extra_columns = ("rationale",)

    def __init__(self, model, processor, config: ScorerConfig, name: str = ""):
        super().__init__(model, processor, config, name)
        self.low, self.high = (float(x) for x in config.answer_range)
        settings = {"max_new_tokens": 512, "do_sample": False, **config.generation}
        self.seed = settings.pop("seed", None)
        self.generate_kwargs = settings

    def to_01(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def to_score(self, value: float) -> float:
        """A number on the answer's scale -> the 1-5 score."""
        return 1 + 4 * self.to_01(value)

    def answers(self, texts: list[str], images: list) -> list:
        """Per prompt: (the numbers of its `samples` answers, the first answer's rationale), or an AnswerError."""
        n = self.config.samples
        if self.seed is not None:
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            inputs = self.encode(texts, images)
            out = self.model.generate(**inputs, num_return_sequences=n, pad_token_id=self.tokenizer.pad_token_id,
                                      **self.generate_kwargs)
        written = self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True,
                                              clean_up_tokenization_spaces=False)
        results = []
        for i in range(len(texts)):
            try:
                read = [read_answer(t, self.config.answer_pattern, self.low, self.high, self.config.answer_match)
                        for t in written[i * n:(i + 1) * n]]
            except AnswerError as e:
                results.append(e)
                continue
            results.append(([v for v, _ in read], read[0][1]))
        return results

    def start_level_probs(self, texts, images):
        results = self.answers(texts, images)  # generate() waits for the GPU anyway
        return lambda: results

    def level_probs(self, texts, images):
        return self.answers(texts, images)

    def score_frames(self, frames) -> dict:
        """score, score_01 and rationale of already-decoded frames (explain --with-score)."""
        results = self.frames_results(frames)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        value = float(np.mean([np.mean(values) for values, _ in results]))
        return {"score": self.to_score(value), "score_01": self.to_01(value),
                "rationale": "\n".join(r for _, r in results)}

    def _finish(self, row, decoded, results: list, started: float) -> dict:
        row["num_frames"] = len(decoded.frames)
        row["warning"] = decoded.warning
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            e = errors[0]
            row.update(status="error", error=str(e) if isinstance(e, AnswerError) else f"model failed: {e}")
        else:
            per_prompt = [float(np.mean(values)) for values, _ in results]  # a clip, or each frame
            value = float(np.mean(per_prompt))
            row.update(score=round(self.to_score(value), 6), score_01=round(self.to_01(value), 6))
            if self.config.mode == "frame":
                row["frame_scores"] = [round(self.to_score(v), 6) for v in per_prompt]
                row["rationale"] = "\n".join(f"[frame {i + 1}] {r}" for i, (_, r) in enumerate(results))
            else:
                row["rationale"] = results[0][1]
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row
