"""Loading base models and adapters, devices and precision."""

import contextlib
from pathlib import Path
from typing import Any

import torch

from itdr_pipeline.default_model import ensure_model


def resolve_base(base_model: str, models_dir: str) -> str:
    """"default" -> the converted SmolLM2 folder under models_dir; a folder path stays a path; else a hub id."""
    if base_model == "default":
        if not models_dir:
            raise ValueError("models_dir is required for the default base model")
        return str(ensure_model(Path(models_dir)))
    return base_model


def device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 autocast is then about twice as fast as fp32 (NOTES.md)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(precision: str) -> bool:
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def autocast(bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the run's device (weights stay fp32, as LoRA training wants them)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device().type, dtype=torch.bfloat16)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, adapter: str | None = None) -> Any:
    """The base model in fp32 on the run's device, with `adapter` merged in when given (a merged
    model scores as fast as the base)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device()).eval()
