"""mPLUG-Owl2, native: importing this registers it with transformers' Auto classes."""

from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from lmm_vqa.models.mplug_owl2.configuration_mplug_owl2 import MPLUGOwl2Config
from lmm_vqa.models.mplug_owl2.modeling_mplug_owl2 import (MPLUGOwl2ForConditionalGeneration, MPLUGOwl2Model,
                                                           MPLUGOwl2PreTrainedModel)
from lmm_vqa.models.mplug_owl2.processing_mplug_owl2 import MPLUGOwl2Processor

AutoConfig.register("mplug_owl2", MPLUGOwl2Config, exist_ok=True)
AutoModelForImageTextToText.register(MPLUGOwl2Config, MPLUGOwl2ForConditionalGeneration, exist_ok=True)
AutoProcessor.register(MPLUGOwl2Config, MPLUGOwl2Processor, exist_ok=True)

__all__ = ["MPLUGOwl2Config", "MPLUGOwl2ForConditionalGeneration", "MPLUGOwl2Model", "MPLUGOwl2PreTrainedModel",
           "MPLUGOwl2Processor"]
