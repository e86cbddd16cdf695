"""LoRA supervised fine-tuning of a causal LM on one published cell (transformers Trainer + peft).

Folders (adapter ids: training.config):
    <adapters_dir>/<version>/<task>-<profile>/<adapter id>/            the finished adapter (read-only)
    <adapters_dir>/<version>/<task>-<profile>/.<adapter id>.partial/   checkpoints while training
A finished adapter is never retrained: the same config on the same split version returns it. An
interrupted run resumes from its last checkpoint in the `.partial` folder. The finished folder
appears by one rename, so it is either complete or absent.
"""

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TRUNCATION_POLICY, RunConfig
from training.data import encode_for_training, load_split, sample, PromptEncoder
from training.model import device, load_tokenizer, resolve_base, use_bf16

Report = Callable[[str, dict[str, Any]], None]  # (message, metadata) for logs and Dagster
MANIFEST = "adapter_manifest.json"  # written last: its presence marks a finished adapter


@dataclass(frozen=True)
class TrainOutcome:
    adapter_dir: Path
    manifest: dict[str, Any]
    trained: bool  # False: an identical adapter already existed


def train(cfg: RunConfig, report: Report) -> TrainOutcome:
    final = cfg.adapter_dir()
    if (final / MANIFEST).is_file():
        report(f"adapter {final} already trained with this config", {})
        return TrainOutcome(final, json.loads((final / MANIFEST).read_text()), trained=False)
    partial = final.parent / f".{final.name}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "run_config.json").write_text(cfg.to_json() + "\n")

    base = resolve_base(cfg.base_model, cfg.models_dir)
    tokenizer = load_tokenizer(base)
    records = sample(load_split(Path(cfg.version_dir), cfg.task, cfg.profile, "train"), cfg.shots, cfg.seed)
    examples = encode_for_training(PromptEncoder(tokenizer, cfg.max_length), records, cfg.mask_prompt)
    lengths = [len(e["input_ids"]) for e in examples]
    report(f"training {cfg.cell} of {cfg.version} on {len(examples)} records "
           f"({'all' if cfg.shots <= 0 else f'{cfg.shots}-shot'}), mean {sum(lengths) / len(lengths):.0f} tokens, "
           f"base {base}", {"train_records": len(examples)})

    trainer = _trainer(cfg, base, tokenizer, examples, partial, report)
    started = time.perf_counter()
    resume = _last_checkpoint(partial / "checkpoints")
    if resume:
        report(f"resuming from {resume}", {"resumed_from": str(resume)})
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    if not trainer.is_world_process_zero():  # several GPUs: rank 0 alone writes the adapter
        return TrainOutcome(final, {}, trained=True)

    out = partial / "adapter"
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    history = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate")}
               for h in trainer.state.log_history if "loss" in h]
    manifest = {
        "adapter_id": cfg.adapter_id(), "split_version": cfg.version, "task": cfg.task, "profile": cfg.profile,
        "base_model": cfg.base_model, "base_model_path": base, "train_records": len(examples),
        "steps": trainer.state.global_step, "epochs": trainer.state.epoch, "train_loss": result.training_loss,
        "seconds": round(seconds, 1), "device": device().type, "bf16": use_bf16(cfg.precision),
        "truncation_policy": TRUNCATION_POLICY, "config": cfg.training_fields(), "loss_history": history,
        "resumed_from": str(resume) if resume else None,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for f in out.iterdir():
        os.chmod(f, 0o444)  # published adapters are immutable
    os.rename(out, final)
    shutil.rmtree(partial, ignore_errors=True)
    report(f"adapter saved to {final}: {manifest['steps']} steps in {seconds:.0f} s, "
           f"final loss {history[-1]['loss'] if history else float('nan'):.4f}", {})
    return TrainOutcome(final, manifest, trained=True)


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if folder.is_dir() else []
    return found[-1] if found else None


def _trainer(cfg: RunConfig, base: str, tokenizer: Any, examples: list[dict[str, list[int]]], partial: Path,
             report: Report) -> Any:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainerCallback,
                              TrainingArguments, set_seed)

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    report(f"LoRA r={cfg.lora_rank} alpha={cfg.lora_alpha} on {','.join(cfg.target_modules)}: "
           f"{trainable:,} trainable of {total:,} parameters", {"trainable_parameters": trainable})

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer's signature)
            if logs and "loss" in logs:
                report(f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                       f"lr {logs.get('learning_rate', 0):.2e}", {})

    args = TrainingArguments(
        output_dir=str(partial / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler, warmup_steps=cfg.warmup_ratio, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1, logging_steps=cfg.logging_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed,
        bf16=use_bf16(cfg.precision), use_cpu=not torch.cuda.is_available(), report_to="none",
        dataloader_num_workers=0, remove_unused_columns=False, train_sampling_strategy="group_by_length",
        disable_tqdm=False, logging_first_step=True,
    )
    dataset = datasets.Dataset.from_list(examples)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=8)
    return Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                   processing_class=tokenizer, callbacks=[Progress()])
