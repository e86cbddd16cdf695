"""`python -m training {train,evaluate,run} --config run.json`: the process the Dagster assets launch
through Pipes, and the same command anywhere else (a GPU host, a Kubernetes pod, `accelerate launch`).

Under Dagster Pipes, progress lines go to the Dagster event log and the result comes back as the
asset's materialization (metadata and data version). Run by hand, the same lines go to stderr and
the result is printed as JSON on stdout.
"""

import argparse
import base64
import json
import logging
import os
import sys
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

from training.config import RunConfig


def is_main_process() -> bool:
    """Under `accelerate launch` / torchrun every GPU runs this module; RANK names the process.
    Only rank 0 saves the adapter, evaluates and reports to Dagster (one materialization, not N)."""
    return int(os.environ.get("RANK", "0")) == 0


class _Channel:
    """Where progress and results go: the Pipes context when Dagster launched us, else stderr/stdout."""

    def __init__(self, pipes: Any | None):
        self.pipes = pipes
        self.log = logging.getLogger("training")

    def report(self, message: str, _metadata: dict[str, Any]) -> None:
        self.log.info(message)  # stderr: the terminal of `itdr train`, the step's compute log in the UI
        if self.pipes:
            self.pipes.log.info(message)  # the Dagster event log

    def materialize(self, metadata: dict[str, Any], data_version: str, asset_key: str | None = None) -> None:
        if self.pipes:
            self.pipes.report_asset_materialization(metadata=metadata, data_version=data_version, asset_key=asset_key)
        else:
            print(json.dumps({"data_version": data_version, "metadata": metadata}, default=str))


def _train(cfg: RunConfig, channel: _Channel) -> dict[str, Any]:
    from training.report import valid_curve_markdown
    from training.train import train

    outcome = train(cfg, channel.report)
    if not is_main_process():
        return {"adapter_dir": str(outcome.adapter_dir)}
    m = outcome.manifest
    losses = m["loss_history"]
    curve = "| step | loss |\n|---:|---:|\n" + "\n".join(f"| {h['step']} | {h['loss']:.4f} |" for h in losses)
    channel.materialize({
        "adapter_dir": {"raw_value": str(outcome.adapter_dir), "type": "path"},
        "adapter_id": m["adapter_id"], "split_version": m["split_version"], "newly_trained": outcome.trained,
        "steps": m["steps"], "train_records": m["train_records"], "seconds": m["seconds"],
        "train_loss": {"raw_value": float(m["train_loss"]), "type": "float"},
        "final_loss": {"raw_value": float(losses[-1]["loss"]) if losses else float("nan"), "type": "float"},
        "loss_curve": {"raw_value": curve, "type": "md"},
        "device": m["device"], "bf16": m["bf16"], "base_model": m["base_model"],
        **({"valid_curve": {"raw_value": valid_curve_markdown(m), "type": "md"},
            "selected_step": m["selected_step"], "stopped_early": m["stopped_early"],
            "valid_metric": m["valid_metric"], "valid_value": {"raw_value": float(m["valid_value"]), "type": "float"}}
           if m.get("valid_curve") else {}),
    }, data_version=f"{m['split_version']}/{m['adapter_id']}", asset_key=_key(channel, "lora_adapter"))
    return {"adapter_dir": str(outcome.adapter_dir), **m}


def _evaluate(cfg: RunConfig, channel: _Channel) -> Path:
    from training import report
    from training.evaluate import Evaluation, evaluate
    from training.train import MANIFEST

    adapter_dir = Path(cfg.adapter) if cfg.adapter else cfg.adapter_dir()
    adapter = None
    if not cfg.skip_tuned:
        if not (adapter_dir / MANIFEST).is_file():
            raise FileNotFoundError(f"no finished adapter at {adapter_dir}: train it first "
                                    "(itdr train), or evaluate the base model and baselines only (--skip-tuned)")
        adapter = {**json.loads((adapter_dir / MANIFEST).read_text()), "path": str(adapter_dir)}
        adapter.pop("loss_history", None)
    result = Evaluation()
    for cell in cfg.cells():  # a mixed run: every cell's test split, one table per task in one report
        part = evaluate(cfg.for_cell(cell), adapter_dir if adapter else None, channel.report)
        result.merge(part, cell.name if cfg.mix else "")
    folder = report.write(cfg, result, adapter, {})
    text = (folder / "report.md").read_text()
    channel.materialize({
        "report_dir": {"raw_value": str(folder), "type": "path"},
        "report": {"raw_value": text, "type": "md"},
        "rows": {"raw_value": result.rows, "type": "json"},
        "plots": {"raw_value": [str(p) for p in sorted(folder.glob("*.png"))], "type": "json"},
        # Inline, so the plots show in the asset's page of the Dagster UI (each is ~20 kB).
        "plot": {"raw_value": "\n\n".join(f"![{p.stem}](data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()})"
                                         for p in sorted(folder.glob("*.png"))), "type": "md"},
        "timings": {"raw_value": result.timings, "type": "json"},
        "test_records": result.records, "split_version": cfg.version,
        "adapter_id": adapter["adapter_id"] if adapter else "none",
    }, data_version=_digest(result.rows), asset_key=_key(channel, "evaluation_report"))
    return folder


def _key(channel: _Channel, name: str) -> str | None:
    """The asset key to report under when the launching step materializes several assets."""
    if channel.pipes is None:
        return None
    keys = channel.pipes.asset_keys
    return name if name in keys else (keys[0] if len(keys) == 1 else None)


def _digest(rows: list[dict[str, Any]]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "evaluate", "run"])
    parser.add_argument("--config", type=Path, required=True, help="RunConfig as JSON (see training/config.py)")
    args = parser.parse_args(argv)
    # peft calls a transformers property that transformers 5 deprecates: not ours to fix, and noisy.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    cfg = RunConfig.load(args.config)
    with ExitStack() as stack:
        main_process = is_main_process()
        pipes = (stack.enter_context(open_dagster_pipes())
                 if main_process and PipesEnvVarParamsLoader().is_dagster_pipes_process() else None)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
        channel = _Channel(pipes)
        if args.command in ("train", "run"):
            _train(cfg, channel)
        if args.command in ("evaluate", "run") and main_process:
            _evaluate(cfg, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
