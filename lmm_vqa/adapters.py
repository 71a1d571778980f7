"""Which weights train: LoRA / QLoRA setup for the recipe (loading lives in checkpoints.py).

Training: LoRA (peft) on the language model's linear layers; the projector trained fully; the
vision tower frozen, LoRA or fully trained; optionally 4-/8-bit bitsandbytes weights (QLoRA).
Fully trained modules ride along in the adapter as peft `modules_to_save`, so a fine-tuned
folder is adapter + processor + scorer.json and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmm_vqa.dual import FUSION, LOCAL_ENCODER, has_dual_encoder, inner_model

LORA_ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class ModuleRoles:
    """Dotted module names of the parts of an image-text model (transformers 5 layout)."""

    vision: str  # model.vision_tower (LLaVA family) | model.visual (Qwen-VL) | model.vision_model (mPLUG-Owl2)
    projector: str  # model.multi_modal_projector | model.visual.merger (inside the vision tower) | model.visual_abstractor
    language: str  # model.language_model | model.layers (mPLUG-Owl2)
    head: str  # lm_head


def module_roles(model) -> ModuleRoles:
    """The model's parts by full module name, from its family's registry entry (a peft-wrapped model too)."""
    from lmm_vqa.backbones import family_of

    family = family_of(inner_model(model).config)
    names = {n for n, _ in model.named_modules()}
    prefix = "base_model.model." if any(n.startswith("base_model.model.") for n in names) else ""
    roles = ModuleRoles(f"model.{family.vision}", f"model.{family.projector}", f"model.{family.language}", "lm_head")
    missing = [r for r in (roles.vision, roles.projector, roles.language) if prefix + r not in names]
    if missing:
        raise ValueError(f"{type(model).__name__} ({family.name} family): no module {missing}; the registry entry in "
                         f"lmm_vqa/backbones/ does not match this model's layout")
    return roles


def is_linear(module) -> bool:
    """A linear layer: nn.Linear, bitsandbytes' quantised ones, or a 1x1 convolution over all channels (a
    convolutional tower's linear layer, e.g. FastViT's MLPs), which peft's LoRA adapts as well."""
    if isinstance(module, torch.nn.Conv2d):
        return module.kernel_size == (1, 1) and module.groups == 1
    return isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")


def linear_layers(model, under: str, names: list[str] | str = LORA_ALL_LINEAR, exclude: str | None = None) -> list[str]:
    """Full names of the linear layers (`is_linear`) inside module `under`, keeping those whose last name
    part is in `names` (or all of them), leaving out those inside `exclude`."""
    found = []
    for name, mod in model.named_modules():
        if not name.startswith(under + ".") or (exclude and name.startswith(exclude + ".")):
            continue
        if is_linear(mod):
            if names == LORA_ALL_LINEAR or name.rsplit(".", 1)[-1] in names:
                found.append(name)
    if not found:
        raise ValueError(f"no linear layers matching {names!r} under {under!r}")
    return found


def quantization_config(bits: int, roles: ModuleRoles, compute_dtype: torch.dtype):
    """bitsandbytes settings for QLoRA; the vision tower, projector and head stay unquantised."""
    from transformers import BitsAndBytesConfig

    skip = [roles.vision, roles.projector, roles.head]  # full names: transformers matches from the start
    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=skip)
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    raise ValueError(f"quantization bits must be 4 or 8, got {bits}")


def make_trainable(model, *, language: str = "lora", vision: str = "frozen", projector: bool = True,
                   lora_r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.05,
                   lora_targets: list[str] | str = LORA_ALL_LINEAR, adapter_name: str = "default"):
    """Wrap `model` for training. language: lora | full | frozen; vision: frozen | lora | full.
    Returns the model to train (a peft model when any LoRA is used), everything else frozen.
    A dual encoder (dual.py) trains its local encoder as `vision` and `projector` say, and its fusion."""
    if language not in ("lora", "full", "frozen") or vision not in ("frozen", "lora", "full"):
        raise ValueError(f"language must be lora|full|frozen and vision frozen|lora|full, got {language!r}, {vision!r}")
    roles = module_roles(model)
    targets, full = [], []
    if language == "lora":
        targets += linear_layers(model, roles.language, lora_targets)
    elif language == "full":
        full += [roles.language, roles.head]
    encoders = [(roles.vision, roles.projector)]
    if has_dual_encoder(model):  # HIVE: the local encoder trains like the global one; the fusion fully
        local = f"model.{LOCAL_ENCODER}."
        encoders.append((local + roles.vision.split(".")[-1], local + roles.projector.split(".", 1)[-1]))
        full.append(f"model.{FUSION}")
    for tower, proj in encoders:
        if vision == "lora":
            targets += linear_layers(model, tower, LORA_ALL_LINEAR, exclude=proj)
        elif vision == "full":
            full.append(tower)
        if projector and not (vision == "full" and proj.startswith(tower + ".")):
            full.append(proj)  # (a fully trained Qwen vision tower already holds its merger)
    model.requires_grad_(False)
    if not targets:  # no LoRA: train the chosen modules in place
        if has_dual_encoder(model):
            raise ValueError("the dual encoder is saved inside a LoRA adapter: use language: lora or vision: lora")
        modules = dict(model.named_modules())
        for name in full:
            modules[name].requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets,
                      modules_to_save=full or None, bias="none")
    return get_peft_model(model, lora, adapter_name=adapter_name)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count as stored elements x 2."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * (2 if p.dtype == torch.uint8 else 1)
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total
