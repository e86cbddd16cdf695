"""LoRA supervised fine-tuning of a causal LM on one published cell (transformers Trainer + peft).

Folders (adapter ids: training.config):
    <adapters_dir>/<version>/<task>-<profile>/<adapter id>/            the finished adapter (read-only)
    <adapters_dir>/<version>/<task>-<profile>/.<adapter id>.partial/   checkpoints while training
A finished adapter is never retrained: the same config on the same split version returns it. An
interrupted run resumes from its last checkpoint in the `.partial` folder. The finished folder
appears by one rename, so it is either complete or absent.

With `valid_every` set, the valid metric is scored along the way (training.validate): the best
adapter so far waits in `.partial/best/`, the curve in `.partial/valid_curve.json` (both survive a
resume), and the adapter published is the best one (`select_best`), with the curve in its manifest.
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
from training.data import PromptEncoder, encode_for_training, load_split, mix_cells, sample
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
    parts = [(sample(load_split(Path(c.version_dir), c.task, c.profile, "train"), cfg.shots, cfg.seed), c.weight)
             for c in cfg.cells()]
    records = mix_cells(parts, cfg.seed)
    if cfg.mix:
        report("mixing " + ", ".join(f"{c.name} ({len(r)} records, weight {c.weight:g})"
                                     for c, (r, _) in zip(cfg.cells(), parts)), {})
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
        _rewind_selection(partial, int(resume.name.split("-")[1]))
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    if not trainer.is_world_process_zero():  # several GPUs: rank 0 alone writes the adapter
        return TrainOutcome(final, {}, trained=True)

    out = partial / "adapter"
    selection = _selection(cfg, partial, trainer, report)
    if selection.get("selected_step") is not None and selection["selected_step"] != trainer.state.global_step:
        shutil.copytree(partial / "best", out, ignore=shutil.ignore_patterns("step"))  # the best, not the last
    else:
        trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    history = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate")}
               for h in trainer.state.log_history if "loss" in h]
    manifest = {
        "adapter_id": cfg.adapter_id(), "split_version": cfg.version, "task": cfg.task, "profile": cfg.profile,
        "cells": [c.name for c in cfg.cells()],
        "base_model": cfg.base_model, "base_model_path": base, "train_records": len(examples),
        "steps": trainer.state.global_step, "epochs": trainer.state.epoch, "train_loss": result.training_loss,
        "seconds": round(seconds, 1), "device": device().type, "bf16": use_bf16(cfg.precision),
        "truncation_policy": TRUNCATION_POLICY, "config": cfg.training_fields(), "loss_history": history,
        "resumed_from": str(resume) if resume else None, **selection,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for f in out.iterdir():
        os.chmod(f, 0o444)  # published adapters are immutable
    os.rename(out, final)
    shutil.rmtree(partial, ignore_errors=True)
    report(f"adapter saved to {final}: {manifest['steps']} steps in {seconds:.0f} s, "
           f"final loss {history[-1]['loss'] if history else float('nan'):.4f}", {})
    return TrainOutcome(final, manifest, trained=True)


def _selection(cfg: RunConfig, partial: Path, trainer: Any, report: Report) -> dict[str, Any]:
    """The valid curve and the step whose adapter is published (the best, or the last)."""
    if not cfg.valid_every:
        return {}
    curve = _read_curve(partial)
    if not curve or curve[-1]["step"] != trainer.state.global_step:  # the last step is a candidate too
        selector = next(c for c in trainer.callback_handler.callbacks if hasattr(c, "validate"))
        selector.validate(trainer.model, trainer.state)
        curve = _read_curve(partial)
    best = _best(curve)
    chosen = best if cfg.select_best else curve[-1]
    report(f"valid {chosen['metric']}: {chosen['value']:.4f} at step {chosen['step']} "
           f"({'best of' if cfg.select_best else 'last of'} {len(curve)} evaluations)", {})
    return {"valid_curve": curve, "selected_step": chosen["step"], "valid_metric": chosen["metric"],
            "valid_value": chosen["value"], "stopped_early": trainer.state.global_step < trainer.state.max_steps}


def _read_curve(partial: Path) -> list[dict[str, Any]]:
    path = partial / "valid_curve.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _best(curve: list[dict[str, Any]]) -> dict[str, Any]:
    from training.validate import better

    best: dict[str, Any] | None = None
    for point in curve:  # ties: the earlier step
        if best is None or better(point["metric"], point["value"], best["value"]):
            best = point
    assert best is not None
    return best


def _rewind_selection(partial: Path, step: int) -> None:
    """A run killed after a valid score but before its checkpoint re-scores those steps: drop what
    lies beyond the checkpoint. Were the kept best adapter among them, start the curve afresh."""
    curve = _read_curve(partial)
    if not curve:
        return
    kept = [p for p in curve if p["step"] <= step]
    best_file = partial / "best" / "step"
    if not best_file.is_file() or int(best_file.read_text()) > step:
        kept = []
        shutil.rmtree(partial / "best", ignore_errors=True)
    _write_atomic(partial / "valid_curve.json", json.dumps(kept, indent=1) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if folder.is_dir() else []
    return found[-1] if found else None


def _trainer(cfg: RunConfig, base: str, tokenizer: Any, examples: list[dict[str, list[int]]], partial: Path,
             report: Report) -> Any:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
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
        """A tqdm meter per logged step (elapsed, ETA, s/step), for the terminal and the Dagster log."""

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 (Trainer's signature)
            self.started, self.first_step = time.perf_counter(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                elapsed = time.perf_counter() - self.started
                done = state.global_step - self.first_step  # a resumed run's rate counts its own steps
                meter = tqdm.format_meter(state.global_step, state.max_steps, elapsed, ncols=60, unit="step",
                                          rate=done / elapsed if done and elapsed else None)
                report(f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                       f"lr {logs.get('learning_rate', 0):.2e} {meter}", {})

    class Selection(TrainerCallback):
        """Valid metric every `valid_every` steps; the best adapter kept in .partial/best."""

        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            if state.global_step % cfg.valid_every == 0 and state.global_step < state.max_steps:
                if self.validate(model, state):
                    control.should_training_stop = True

        def validate(self, model: Any, state: Any) -> bool:
            """Scores `model` at this step; True when `patience` evaluations in a row brought no gain."""
            from training.validate import ValidScorer, better

            if not hasattr(self, "scorer"):
                self.scorer = ValidScorer(cfg, tokenizer)
            started = time.perf_counter()
            was_training = model.training
            model.eval()
            metric, value = self.scorer.score(model)
            if was_training:
                model.train()
            curve = _read_curve(partial)
            best = _best(curve) if curve else None
            curve.append({"step": state.global_step, "metric": metric, "value": value,
                          "seconds": round(time.perf_counter() - started, 1)})
            if best is None or better(metric, value, best["value"]):
                tmp = partial / ".best.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                model.save_pretrained(tmp)
                (tmp / "step").write_text(str(state.global_step))
                shutil.rmtree(partial / "best", ignore_errors=True)
                os.rename(tmp, partial / "best")
                best = curve[-1]
            _write_atomic(partial / "valid_curve.json", json.dumps(curve, indent=1) + "\n")
            since = sum(1 for p in curve if p["step"] > best["step"])
            report(f"valid {metric} at step {state.global_step}: {value:.4f} "
                   f"(best {best['value']:.4f} at step {best['step']}; {len(self.scorer.records)} records, "
                   f"{curve[-1]['seconds']:.0f} s)", {})
            return bool(cfg.patience) and since >= cfg.patience

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
                   processing_class=tokenizer, callbacks=[Progress(), *([Selection()] if cfg.valid_every else [])])
