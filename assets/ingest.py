import dagster as dg
from pydantic import Field

from assets.metadata import table_metadata
from assets.resources import DATASETS, ItdrSettings, partition, record
from itdr_pipeline import catalog
from data_contracts import load_contract
from itdr_pipeline.hashing import sha256_json
from itdr_pipeline.ingest import (DEFAULT_MAX_REJECT_SHARE, checksum_note, ingest_dataset, mark_audit,
                                  strict_default)
from itdr_pipeline.publish import CODE_VERSION
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.validation import validate_table

VALIDATED = ("users", "items", "interactions", "reviews")
_ORDER = {"users": "user_id", "items": "item_id", "interactions": "src_row", "reviews": "src_row",
          "rejected_rows": "file, line_no"}


class IngestConfig(dg.Config):
    max_reject_share: float = Field(
        default=DEFAULT_MAX_REJECT_SHARE, ge=0, le=1,
        description="Bad-row budget: fail a file when more than this share of its lines is malformed "
                    "(quarantined lines are counted per file and reason in the metadata).")
    strict: bool = Field(
        default=False, description="Fail when a raw file differs from the registry's official checksum "
                                   "(otherwise a warning in the log and metadata). Also on when ITDR_STRICT=1.")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, group_name="ingest", kinds={"duckdb"}, description=load_contract(name).description,
                     partitions_def=DATASETS, code_version=CODE_VERSION)
        for name in (*VALIDATED, "rejected_rows")
    ],
    check_specs=[
        dg.AssetCheckSpec("contract", asset=name, blocking=True,
                          description=f"The {name} data contract (data_contracts/{name}.yaml), via great-expectations.")
        for name in VALIDATED
    ],
    partitions_def=DATASETS,
    name="canonical_tables",
)
def canonical_tables(context: dg.AssetExecutionContext, config: IngestConfig, itdr: ItdrSettings):
    """Parse a dataset's official raw files into the canonical users, items, interactions and reviews tables."""
    spec = get_dataset(context.partition_key)
    settings = itdr.settings()
    with partition(context, itdr) as con:
        mark_audit(con, spec.id, None)
        report = ingest_dataset(con, spec, settings, config.max_reject_share, config.strict or strict_default())
        for f in report.modified_files:
            context.log.warning(f"{spec.id}: {checksum_note(f)}")
        data_version = dg.DataVersion(sha256_json([(f.file, f.sha256) for f in report.files])[:16])
        lineage: dict[str, str] = {f"source/{f.file}": f"{f.sha256} ({f.status})" for f in report.files}
        for note in report.result.absent:  # e.g. ml-1m without ratings.dat: users and items only
            context.log.warning(f"{spec.id}: {note}")
        if report.result.absent:
            lineage["absent"] = "; ".join(report.result.absent)
        if report.modified_files:  # said on every table, so no one reads modified data unawares
            lineage["modified_files"] = "; ".join(checksum_note(f) for f in report.modified_files)
        rejected = report.rejected_by_file()
        for file, reasons in rejected.items():
            context.log.warning(f"{spec.id}: {file}: quarantined "
                                + ", ".join(f"{n} {reason}" for reason, n in reasons.items()) + " (see rejected_rows)")
        results = []
        for name in VALIDATED:
            outcomes = validate_table(con, load_contract(name), spec)
            failed = [o for o in outcomes if not o.success]
            check = dg.AssetCheckResult(
                asset_key=name, check_name="contract", passed=not any(o.severity == "ERROR" for o in failed),
                severity=dg.AssetCheckSeverity.ERROR if any(o.severity == "ERROR" for o in failed)
                else dg.AssetCheckSeverity.WARN,
                description="; ".join(o.message for o in failed) or f"all {len(outcomes)} expectations passed",
                metadata={o.expectation.id: dg.MetadataValue.text(o.message) for o in outcomes},
            )
            meta = table_metadata(con, load_contract(name), spec.id, _ORDER[name],
                                  report.result.dropped if name == "interactions" else None)
            results.append(dg.MaterializeResult(asset_key=name, metadata={**meta, **lineage},
                                                data_version=data_version, check_results=[check]))
        results.append(dg.MaterializeResult(
            asset_key="rejected_rows", data_version=data_version,
            metadata={**table_metadata(con, load_contract("rejected_rows"), spec.id, _ORDER["rejected_rows"],
                                       report.result.dropped),
                      "rejected_by_file": dg.MetadataValue.json(rejected),
                      "bad_row_budget": dg.MetadataValue.float(config.max_reject_share), **lineage},
        ))
        # Write-audit-publish: readers see these tables only once every contract passed, and no later
        # step (in this run or another) derives anything from tables that failed.
        failed_checks = [f"{name}: {r.check_results[0].description}" for name, r in zip(VALIDATED, results)
                         if not r.check_results[0].passed]
        mark_audit(con, spec.id, not failed_checks, "; ".join(failed_checks)[:500])
        if not failed_checks:
            record(context, settings, catalog.snapshot(con, settings, [*VALIDATED, "rejected_rows", "source_files"],
                                                       spec.id))
    yield from results
