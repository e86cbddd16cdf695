import json

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from assets.metadata import preview
from assets.resources import DATASETS, DUCKDB_POOL, warehouse
from itdr_pipeline.publish import CODE_VERSION
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.render import applicable_tasks, check_records, render_dataset
from itdr_pipeline.tasks.preference import PreferenceConfig

_DEFAULTS = PreferenceConfig()


class RenderConfig(dg.Config):
    tasks: list[str] = Field(default=[], description="Tasks to render; empty = every task the dataset feeds.")
    history_len: int = Field(default=_DEFAULTS.history_len, description="Prior interactions shown per record.")
    min_history: int = Field(default=_DEFAULTS.min_history, description="temporal: priors needed before a target.")
    max_eval_per_user: int = Field(default=_DEFAULTS.max_eval_per_user, description="temporal: cap on a user's valid/test targets.")
    max_train_per_user: int = Field(default=_DEFAULTS.max_train_per_user, description="temporal: cap on a user's train targets (seeded sample).")
    tallrec_records: int = Field(default=_DEFAULTS.tallrec_records, description="tallrec: keep the last N windows.")
    seed: int = Field(default=_DEFAULTS.seed, description="Seed for every sampling decision.")

    def preference(self) -> PreferenceConfig:
        return PreferenceConfig(self.history_len, self.min_history, self.max_eval_per_user, self.max_train_per_user,
                                self.tallrec_records, self.seed)


@dg.asset(
    deps=["users", "items", "filtered_interactions"],
    partitions_def=DATASETS,
    group_name="render",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec("leakage", asset="instruction_records", blocking=True,
                                   description="Clean profiles: test targets after train targets; no record in two splits.")],
)
def instruction_records(context: dg.AssetExecutionContext, config: RenderConfig, duckdb: DuckDBResource):
    """Instruction records (instruction, input, output plus structured ids) for every task and profile."""
    spec = get_dataset(context.partition_key)
    tasks = applicable_tasks(spec, config.tasks or None)
    with warehouse(duckdb) as con:
        counts = render_dataset(con, spec, tasks, config.preference())
        findings = check_records(con, spec.id)
        cols = ["task", "profile", "split", "template_id", "input", "output"]
        table_preview = preview(con, "instruction_records", spec.id, cols, "profile, record_idx")
    errors = [f for f in findings if not f.passed and f.severity == "ERROR"]
    check = dg.AssetCheckResult(
        check_name="leakage", passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{f.check}: {f.detail}" for f in findings if not f.passed) or "all checks passed",
        metadata={f.check: dg.MetadataValue.text(("ok: " if f.passed else "FAILED: ") + f.detail) for f in findings},
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(counts.values()),
            "preview": table_preview,
            "records": dg.MetadataValue.json({"/".join(k): v for k, v in counts.items()}),
            "config": dg.MetadataValue.json(json.loads(config.model_dump_json())),
        },
        check_results=[check],
    )
