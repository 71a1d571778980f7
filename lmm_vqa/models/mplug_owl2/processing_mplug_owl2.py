"""mPLUG-Owl2 processor: Q-Align's prompt tokenisation and image preparation.

- Images are padded to a square with the image processor's mean colour (in 0-255, truncated, as
  Q-Align's expand2square does) and then go through the CLIP image processor. PIL images and uint8
  arrays are also resized here, with PIL's bicubic filter, exactly as the original's PIL-based
  CLIPImageProcessor did; (3, H, W) tensors (on a GPU) are padded on their device and left to the
  image processor's own resize (on the GPU; CPU tensors take the PIL path).
- Text: each `<|image|>` stands for one image. Like Q-Align's tokenizer_image_token, the text is
  split at the placeholders, every piece tokenised on its own (so each starts a fresh SentencePiece
  word), the BOS token kept only at the start, and each placeholder replaced by the image's visual
  tokens: `image_seq_length` copies of `image_token_index` (-200), which the model fills. A prompt of
  N images therefore holds the same ids as Q-Align's video prompt, whose single `<|image|>` stands
  for all N frames.
- The chat template renders Q-Align's conversation: "USER: {question}\\n<|image|>\\nASSISTANT:".
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from lmm_vqa.views import mean_colour

IMAGE_PLACEHOLDER = "<|image|>"

# The user turn: its text, then its images on a line of their own ("\n<|image|>...\n"), as Q-Align's
# prompts have it; a turn without images ends with a space. The assistant turn ends with </s>.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set turn = namespace(texts=[], images=0) -%}"
    "{%- if message['content'] is string -%}{%- set turn.texts = [message['content']] -%}{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'text' -%}{%- set turn.texts = turn.texts + [item['text']] -%}"
    "{%- elif item['type'] in ('image', 'video') -%}{%- set turn.images = turn.images + 1 -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{{ turn.texts | join(' ') }}{{ ' ' }}"
    "{%- elif message['role'] == 'user' -%}{{ 'USER: ' + turn.texts | join(' ') }}"
    "{%- if turn.images -%}{{ '\\n' + '<|image|>' * turn.images + '\\n' }}{%- else -%}{{ ' ' }}{%- endif -%}"
    "{%- else -%}{{ 'ASSISTANT: ' + turn.texts | join(' ') + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def pad_to_square(image, fill):
    """A (H, W, 3) uint8 array or a (3, H, W) tensor, centred on a square of `fill` (top/left get the
    smaller half of the padding)."""
    if isinstance(image, torch.Tensor):
        _, h, w = image.shape
        side = max(h, w)
        canvas = image.new_empty((3, side, side))
        for channel, value in zip(canvas, fill):  # filled from Python numbers: no small upload that waits for the GPU
            channel.fill_(value)
        top, left = (side - h) // 2, (side - w) // 2
        canvas[:, top:top + h, left:left + w] = image
        return canvas
    image = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    h, w = image.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = image
    return canvas


class MPLUGOwl2Processor(ProcessorMixin):
    """CLIP image processor + LLaMA tokenizer, with Q-Align's image-token splicing (see the module doc)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, image_seq_length: int = 65,
                 image_token_index: int = -200, **kwargs):
        self.image_seq_length = image_seq_length
        self.image_token_index = image_token_index
        self.image_token = IMAGE_PLACEHOLDER
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """As ProcessorMixin, with the visual-token count read from the model's config.json when the
        folder (a hub checkpoint as published) has no processor settings of its own."""
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(pretrained_model_name_or_path)
            processor.image_seq_length = config.image_seq_length
            processor.image_token_index = config.image_token_index
        except (OSError, ValueError, AttributeError):  # an adapter folder: no model config, its own settings kept
            pass
        return processor

    def _images(self, images, **kwargs) -> dict:
        fill = mean_colour(self.image_processor)
        size = self.image_processor.crop_size["height"] if self.image_processor.do_center_crop else \
            self.image_processor.size.get("shortest_edge", self.image_processor.size.get("height"))
        prepared = []
        for image in images:
            if isinstance(image, torch.Tensor) and image.device.type == "cpu":  # the PIL path: the original's numbers
                image = image.permute(1, 2, 0).numpy()
            square = pad_to_square(image, fill)
            if not isinstance(square, torch.Tensor) and square.shape[0] != size:
                from PIL import Image

                square = np.array(Image.fromarray(square).resize((size, size), Image.BICUBIC))
            prepared.append(square)
        return dict(self.image_processor(images=prepared, **kwargs))

    def tokenize(self, text: str) -> list[int]:
        """Ids of one prompt, Q-Align's way: pieces between placeholders tokenised apart, BOS once."""
        pieces = [self.tokenizer(p)["input_ids"] if p else [] for p in text.split(IMAGE_PLACEHOLDER)]
        bos = self.tokenizer.bos_token_id
        has_bos = bool(pieces[0]) and pieces[0][0] == bos and bos is not None
        ids = [bos] if has_bos else []
        for i, piece in enumerate(pieces):
            if i:
                ids += [self.image_token_index] * self.image_seq_length
            ids += piece[1:] if has_bos and piece[:1] == [bos] else piece
        return ids

    def __call__(self, images=None, text=None, return_tensors=None, padding=True, device=None, **kwargs) -> BatchFeature:
        data = {}
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            data.update(self._images(images, return_tensors=return_tensors, device=device, **kwargs))
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            placeholders = sum(t.count(IMAGE_PLACEHOLDER) for t in texts)
            given = 0 if images is None else len(images)
            if placeholders != given:
                raise ValueError(f"the text names {placeholders} images ({IMAGE_PLACEHOLDER}) but {given} were given")
            ids = [self.tokenize(t) for t in texts]
            longest = max(map(len, ids))
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            left = self.tokenizer.padding_side == "left"
            if not padding and len(set(map(len, ids))) > 1:
                raise ValueError("prompts of different lengths need padding=True")
            rows, masks = [], []
            for row in ids:
                fill = longest - len(row)
                rows.append([pad] * fill + row if left else row + [pad] * fill)
                masks.append([0] * fill + [1] * len(row) if left else [1] * len(row) + [0] * fill)
            data.update(input_ids=rows, attention_mask=masks)
        return BatchFeature(data, tensor_type=return_tensors)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values"]


__all__ = ["MPLUGOwl2Processor"]
