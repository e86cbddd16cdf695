import json

import dagster as dg
from duckdb import DuckDBPyConnection
from pydantic import Field

from assets.metadata import cell_preview
from assets.resources import DATASETS, ItdrSettings, partition, record
from itdr_pipeline.records import CONTRACT as RECORD_CONTRACT_SPEC
from itdr_pipeline import catalog
from itdr_pipeline.publish import CODE_VERSION
from itdr_pipeline.config import Settings
from itdr_pipeline.registry import DatasetSpec, get_dataset
from itdr_pipeline.render import applicable_tasks, check_records, render_tasks
from itdr_pipeline.tasks.base import TASKS, RenderSettings
from itdr_pipeline.taskspec import task_spec

# From the record contract, with its column descriptions; on the definition too, so the catalog
# shows the layout before the first materialization.
RECORD_TABLE_SCHEMA = RECORD_CONTRACT_SPEC.dagster_schema()
_D = RenderSettings()


class RenderConfig(dg.Config):
    """Run config of a render asset (every field is part of the published version id)."""

    profiles: list[str] = Field(default=list(_D.profiles), description="Split profiles: temporal, leave_one_out, "
                                "random_user, global_temporal (preference adds tallrec where registered).")
    seed: int = Field(default=_D.seed, description="Seed for every sampling decision.")
    cap: int = Field(default=_D.cap, description="Records per (task, dataset, profile) cell, split 8:1:1; 0 = no cap.")
    min_history: int = Field(default=_D.min_history, description="Earlier interactions a target needs.")
    max_eval_per_user: int = Field(default=_D.max_eval_per_user, description="temporal: a user's valid/test targets.")
    max_train_per_user: int = Field(default=_D.max_train_per_user, description="Cap on a user's train targets.")
    history_len: int = Field(default=_D.history_len, description="preference and rp: earlier interactions shown.")
    seq_history_len: int = Field(default=_D.seq_history_len, description="tkr, nir, cdr: earlier interactions shown.")
    tallrec_records: int = Field(default=_D.tallrec_records, description="preference/tallrec: keep the last N windows.")
    negatives: str = Field(default=_D.negatives, description="Negative sampling: uniform or popularity.")
    tkr_candidates: int = Field(default=_D.tkr_candidates, description="tkr: candidates per record.")
    tkr_positives: int = Field(default=_D.tkr_positives, description="tkr: most positives (target + next in split).")
    nir_candidates: int = Field(default=_D.nir_candidates, description="nir: candidates per record.")
    cdr_candidates: int = Field(default=_D.cdr_candidates, description="cdr: candidates per record.")
    cdr_min_source_history: int = Field(default=_D.cdr_min_source_history,
                                        description="cdr: source-domain interactions needed before the target.")
    cdr_min_history: int = Field(default=_D.cdr_min_history, description="cdr: target-domain interactions needed.")
    profile_len: int = Field(default=_D.profile_len, description="uap, ir: the user's items shown.")
    tui_reviews: int = Field(default=_D.tui_reviews, description="tui: customer reviews shown.")
    review_chars: int = Field(default=_D.review_chars, description="Review excerpts: about this many characters.")
    ir_min_liked: int = Field(default=_D.ir_min_liked, description="ir: liked items a user needs.")
    tui_min_likers: int = Field(default=_D.tui_min_likers, description="tui: users who liked the item.")
    cdr_source: str | None = Field(default=None, description="cdr: source-domain dataset id (default: the registry's partner).")
    fraction: float = Field(default=_D.fraction, description="Ablation: share of each cell's train records kept.")
    descriptions: bool = Field(default=_D.descriptions, description="Ablation: False drops task descriptions.")
    root: str | None = Field(default=None, description="Ablation: UII, UIU or InstructRec renders one root's tasks only.")
    unseen_template_test: bool = Field(default=False, description="Test records use the held-out template.")
    teacher_base_url: str | None = Field(default=None, description="ir/tui: OpenAI-compatible endpoint (optional).")
    teacher_model: str | None = Field(default=None, description="ir/tui: the teacher model name.")
    teacher_api_key_env: str = Field(default=_D.teacher_api_key_env, description="Variable holding the API key.")
    teacher_max_records: int = Field(default=0, description="Teacher rewrites per cell; 0 = all.")
    instructrec_candidates: int = Field(default=_D.instructrec_candidates,
                                        description="seqrec, search, psearch: candidates per record (the paper: 10).")
    instructrec_history_len: int = Field(default=_D.instructrec_history_len,
                                         description="seqrec, psearch: earlier interactions shown.")
    instructrec_negatives: str = Field(default=_D.instructrec_negatives,
                                       description="seqrec, search, psearch negatives: uniform, popularity, "
                                                   "retriever (BM25 hard negatives) or knn (item-kNN ones).")
    instructrec_augment: list[str] = Field(default=list(_D.instructrec_augment),
                                           description="Train-only InstructRec augmentations: flip (search, psearch: "
                                                       "from the item, write the intention), consistency (psearch: "
                                                       "does this intention fit this user? Yes/No).")
    instructrec_full_ranking: bool = Field(default=_D.instructrec_full_ranking,
                                           description="seqrec, search, psearch: the output ranks every candidate.")
    instructrec_groups: int = Field(default=_D.instructrec_groups,
                                    description="seqrec, search, psearch: valid and test lists of this many groups "
                                                "of instructrec_candidates, ranked in two stages (the paper's "
                                                "100 candidates: 10).")

    def settings(self) -> RenderSettings:
        fields = self.model_dump()
        fields["profiles"] = tuple(fields["profiles"])
        fields["instructrec_augment"] = tuple(fields["instructrec_augment"])
        return RenderSettings(**fields)


# What cdr reads of its source domain, copied from the source's committed snapshot.
_CDR_SOURCE_TABLES = ["users", "items", "reviews", "filtered_interactions", "filter_runs"]


def import_cdr_source(context: dg.AssetExecutionContext, settings: Settings, con: DuckDBPyConnection,
                      spec: DatasetSpec, render: RenderSettings, tasks: list[str]) -> None:
    """cdr reads another partition: copy that source domain's last committed rows into this
    partition's working file (never its working file, which another run may hold)."""
    source = render.cdr_source or spec.extra.get("cdr_partner")
    if "cdr" in tasks and source and source != spec.id:
        if catalog.import_partition(con, settings, source, _CDR_SOURCE_TABLES):
            context.log.info(f"cdr: source domain {source} read from its committed snapshot")


def _render_asset(task: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{task}_records",
        deps=["users", "items", "reviews", "filtered_interactions"],
        partitions_def=DATASETS,
        group_name="render",
        kinds={"duckdb"},
        code_version=CODE_VERSION,
        metadata={"dagster/column_schema": RECORD_TABLE_SCHEMA},
        description=f"{task_spec(task).title}: instruction records (instruction, input, output plus structured ids) "
                    "for every split profile. Re-materialize it alone to re-render this task without re-ingesting.",
        check_specs=[dg.AssetCheckSpec("leakage", asset=f"{task}_records", blocking=True,
                                       description="Clean profiles: test targets after train targets, no test target "
                                                   "among the user's train targets, no record in two splits, sound "
                                                   "candidate lists.")],
    )
    def _records(context: dg.AssetExecutionContext, config: RenderConfig, itdr: ItdrSettings) -> dg.MaterializeResult:
        spec = get_dataset(context.partition_key)
        settings = config.settings()
        with partition(context, itdr) as con:
            if task not in applicable_tasks(spec, None, settings.root):
                outcome = render_tasks(con, spec, [], settings)
                outcome.skipped[task] = (f"{spec.id} does not feed {task}" if task not in spec.tasks
                                         else f"ablation root={settings.root} leaves {task} out")
                con.execute("DELETE FROM instruction_records WHERE dataset = ? AND task = ?", [spec.id, task])
                con.execute("DELETE FROM render_runs WHERE dataset = ? AND task = ?", [spec.id, task])
            else:
                import_cdr_source(context, itdr.settings(), con, spec, settings, [task])
                outcome = render_tasks(con, spec, [task], settings, progress=context.log.info, explicit=False)
            findings = check_records(con, spec.id, [task])
            profiles = sorted({p for _, p, _ in outcome.counts})
            previews = {f"preview/{task}-{p}": cell_preview(con, spec.id, task, p) for p in profiles}
            errors = [f for f in findings if not f.passed and f.severity == "ERROR"]
            if not errors:  # leaky records never reach readers
                record(context, itdr.settings(),
                       catalog.snapshot(con, itdr.settings(), ["instruction_records", "render_runs"], spec.id))
        if task in outcome.skipped:
            context.log.warning(f"{spec.id}: {task} skipped: {outcome.skipped[task]}")
        check = dg.AssetCheckResult(
            check_name="leakage", passed=not errors,
            severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{f.check}: {f.detail}" for f in findings if not f.passed)
            or ("nothing rendered" if not findings else "all checks passed"),
            metadata={f.check: dg.MetadataValue.text(("ok: " if f.passed else "FAILED: ") + f.detail)
                      for f in findings},
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(outcome.counts.values()),
                "dagster/column_schema": RECORD_TABLE_SCHEMA,
                **previews,
                "records": dg.MetadataValue.json({"/".join(k[1:]): v for k, v in outcome.counts.items()}),
                **{f"dropped_{reason}": n for reason, n in outcome.dropped.items()},
                "skipped": outcome.skipped.get(task, ""),
                "config": dg.MetadataValue.json(json.loads(config.model_dump_json())),
            },
            check_results=[check],
        )

    return _records


render_assets = [_render_asset(task) for task in TASKS]
RENDER_ASSET_NAMES = [f"{task}_records" for task in TASKS]
