"""`itdr train` and `itdr evaluate`: one Dagster job each, run in this process, the training
itself in a child process (Dagster Pipes). Registered on the app by assets.cli."""

from pathlib import Path
from typing import Annotated

import typer

from assets.cli_options import ConfigFile, fail
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.registry import get_dataset
from training.config import RUN_DEFAULTS as _RUN


def _model_run(dataset: str, config: dict[str, object], evaluate_only: bool) -> None:
    """Shared by `train` and `evaluate`: run the Dagster job, print where the results are."""
    spec = get_dataset(dataset)
    if config["eval_limit"] < 0 or config["max_steps"] < 0:
        fail("--eval-limit and --max-steps must be >= 0")
    settings = Settings.from_env().ensure()
    from itdr_pipeline.versions import latest_version_dir

    from assets.training import parse_cell

    wanted = ([parse_cell(c)[:3] for c in config.get("mix") or []]  # type: ignore[union-attr]
              or [(spec.id, config["task"], config["profile"])])
    for dataset_id, task, profile in wanted:  # refuse a missing cell before starting any process
        try:
            version = latest_version_dir(settings, dataset_id)
        except ItdrError as exc:
            fail(str(exc))
        if not (version / "data" / f"{task}-{profile}").is_dir():
            have = sorted(p.name for p in (version / "data").iterdir())
            fail(f"{version.name} has no {task}-{profile} cell; published cells: {', '.join(have)}")
    from assets.runner import train as run

    typer.echo(f"ITDR_HOME={settings.home}")
    outcome = run(settings, spec.id, config, evaluate_only)
    if not outcome.success:
        fail(f"{dataset}: {outcome.reason} (run {outcome.run_id})")
    adapter = outcome.metadata.get("lora_adapter", {})
    report = outcome.metadata["evaluation_report"]
    if adapter:
        typer.echo(f"adapter {adapter['adapter_id']} ({'trained' if adapter['newly_trained'] else 'already trained'}, "
                   f"{adapter['steps']} steps, final loss {adapter['final_loss']:.4f}) at {adapter['adapter_dir']}")
    typer.echo(f"\n{report['report']}")
    typer.echo(f"report: {report['report_dir']}")


def _model_options(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def train(
    dataset: Annotated[str, typer.Option(help="Dataset id whose latest published version to train on.")] = "demo",
    task: Annotated[str, typer.Option(help="Task (cell) to train on.")] = "preference",
    profile: Annotated[str, typer.Option(help="Split profile of the cell.")] = "temporal",
    max_steps: Annotated[int, typer.Option(help="Optimizer steps; 0 = --epochs over the train split.")] = _RUN["max_steps"],
    epochs: Annotated[float, typer.Option(help="Epochs when --max-steps is 0.")] = _RUN["epochs"],
    shots: Annotated[int, typer.Option(help="K-shot: train on K seeded train records (TALLRec: 16/64/256); 0 = all.")] = _RUN["shots"],
    eval_limit: Annotated[int, typer.Option(help="Evaluate a seeded sample of N test records; 0 = all.")] = _RUN["eval_limit"],
    base_model: Annotated[str, typer.Option(help="'default' (SmolLM2-135M-Instruct, offline), a local HF folder "
                                                 "or a hub id.")] = "default",
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = _RUN["batch_size"],
    grad_accum: Annotated[int, typer.Option(help="Forward passes per optimizer step (4 x 2 = 8 per step).")] = _RUN["grad_accum"],
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule, 3% warm-up).")] = _RUN["learning_rate"],
    lora_rank: Annotated[int, typer.Option(help="LoRA rank (alpha = 2 x rank unless --lora-alpha).")] = _RUN["lora_rank"],
    lora_alpha: Annotated[int | None, typer.Option(help="LoRA alpha.")] = None,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout (0: no copy of each adapted input, faster).")] = _RUN["lora_dropout"],
    max_length: Annotated[int, typer.Option(help="Max tokens per example (prompt input cut from the left).")] = _RUN["max_length"],
    no_mask_prompt: Annotated[bool, typer.Option("--no-mask-prompt", help="Train on prompt tokens too.")] = False,
    precision: Annotated[str, typer.Option(help="auto (bf16 where the hardware has it), bf16 or fp32.")] = _RUN["precision"],
    seed: Annotated[int, typer.Option(help="Seed of sampling, initialisation and data order.")] = _RUN["seed"],
    run_name: Annotated[str, typer.Option(help="Report folder name under $ITDR_HOME/reports.")] = "",
    valid_every: Annotated[int, typer.Option(help="Score the valid split every N steps and keep the best "
                                                  "adapter (TALLRec's model selection); 0 = keep the last.")] = _RUN["valid_every"],
    valid_limit: Annotated[int, typer.Option(help="Valid records scored each time (seeded sample); 0 = all.")] = _RUN["valid_limit"],
    patience: Annotated[int, typer.Option(help="Stop after N valid scores without a gain; 0 = never.")] = _RUN["patience"],
    mix: Annotated[list[str] | None, typer.Option(
        help="Multi-task: a cell dataset/task/profile[:weight] to mix into one run; repeat it "
             "(--mix ml-100k/preference/temporal --mix ml-100k/rp/temporal:0.5). Replaces --dataset/--task/"
             "--profile; every cell is evaluated, model selection scores the first.")] = None,
    config: ConfigFile = None,
) -> None:
    """LoRA-tune a model on one published cell (or several, --mix), then evaluate it, its zero-shot
    self and baselines."""
    if mix:
        from assets.training import parse_cell

        try:
            cells = [parse_cell(entry) for entry in mix]
        except ItdrError as exc:
            fail(str(exc))
        dataset, task, profile = cells[0][:3]
    _model_run(dataset, _model_options(
        task=task, profile=profile, max_steps=max_steps, epochs=epochs, shots=shots, eval_limit=eval_limit,
        base_model=base_model, batch_size=batch_size, grad_accum=grad_accum, learning_rate=learning_rate,
        lora_rank=lora_rank, lora_alpha=lora_alpha if lora_alpha is not None else 2 * lora_rank, lora_dropout=lora_dropout,
        max_length=max_length, mask_prompt=not no_mask_prompt, precision=precision, seed=seed, run_name=run_name,
        valid_every=valid_every, valid_limit=valid_limit, patience=patience, mix=list(mix or []),
        full_run=True),  # asked for on the command line: --max-steps 0 means the epochs given
        evaluate_only=False)


def evaluate(
    dataset: Annotated[str, typer.Option(help="Dataset id (its latest published version).")] = "demo",
    task: Annotated[str, typer.Option(help="Task (cell) to evaluate.")] = "preference",
    profile: Annotated[str, typer.Option(help="Split profile of the cell.")] = "temporal",
    adapter: Annotated[str, typer.Option(help="Adapter folder to evaluate (from `itdr train`).")] = "",
    skip_tuned: Annotated[bool, typer.Option("--skip-tuned", help="No adapter: zero-shot and baselines only.")] = False,
    eval_limit: Annotated[int, typer.Option(help="Evaluate a seeded sample of N test records; 0 = all.")] = _RUN["eval_limit"],
    base_model: Annotated[str, typer.Option(help="'default', a local HF folder or a hub id.")] = "default",
    max_length: Annotated[int, typer.Option(help="Max prompt tokens (input cut from the left).")] = _RUN["max_length"],
    precision: Annotated[str, typer.Option(help="auto, bf16 or fp32.")] = _RUN["precision"],
    seed: Annotated[int, typer.Option(help="Seed of the evaluation sample and baselines.")] = _RUN["seed"],
    run_name: Annotated[str, typer.Option(help="Report folder name under $ITDR_HOME/reports.")] = "",
    config: ConfigFile = None,
) -> None:
    """Evaluate an adapter (or the base model zero-shot and baselines) on a cell's test split."""
    if not adapter and not skip_tuned:
        fail("give --adapter <folder> (printed by `itdr train`) or --skip-tuned")
    if adapter:
        folder = Path(adapter).expanduser().resolve()
        if not (folder / "adapter_manifest.json").is_file():
            fail(f"{folder} is not a finished adapter (no adapter_manifest.json)")
        adapter = str(folder)
    _model_run(dataset, _model_options(
        task=task, profile=profile, adapter=adapter, skip_tuned=skip_tuned, eval_limit=eval_limit,
        base_model=base_model, max_length=max_length, precision=precision, seed=seed, run_name=run_name,
        max_steps=0), evaluate_only=True)
