"""`itdr`: the command line. Every failure exits non-zero with a one-line reason.

Heavy modules (Dagster, the runner) are imported inside the commands that need them, so
`itdr datasets` and `itdr query` start fast.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.raw import available, find_folder
from itdr_pipeline.registry import LABEL_RULES, REGISTRY, get_category, get_dataset, parse_dataset_list

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Public recommendation data -> versioned instruction-tuning data (Dagster + DuckDB).")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def datasets(
    dataset: Annotated[str | None, typer.Argument(help="Show one dataset's details: files, checksums, terms.")] = None,
) -> None:
    """List registry ids (id, name, whether the raw files are present), or one dataset in detail."""
    settings = Settings.from_env()
    if dataset is None:
        for spec in REGISTRY.values():
            typer.echo(f"{spec.id}\t{spec.name}\t{_presence(spec, settings)}")
        return
    spec = get_dataset(dataset)
    folder = None if spec.synthetic else find_folder(spec, settings)
    rows = [("id", spec.id), ("name", spec.name), ("description", spec.description), ("homepage", spec.homepage),
            ("terms", spec.terms), ("citation", spec.citation),
            ("feedback", f"{spec.feedback}; label: {LABEL_RULES[spec.label_rule]}"),
            ("tasks", ", ".join(spec.tasks)), ("status", _presence(spec, settings))]
    if spec.category:
        rows.append(("category", spec.category))
    for raw in spec.files:
        present = folder is not None and any((folder / n).is_file() for n in raw.names)
        need = "required" if raw.required else "optional"
        names = " | ".join(raw.names)
        rows.append(("file", f"{names} ({need}, {'present' if present else 'absent'}; "
                             f"sha256 {raw.sha256 or 'not published'})"))
    for d in spec.downloads:
        check = f"sha256 {d.sha256}" if d.sha256 else f"md5 {d.md5}" if d.md5 else "no published checksum"
        rows.append(("download", f"{d.url} ({check})"))
    for key, value in rows:
        typer.echo(f"{key}\t{value}")


def _presence(spec, settings: Settings) -> str:
    if spec.synthetic:
        return "generated locally (synthetic)"
    found = find_folder(spec, settings)
    if found is not None and not available(spec, settings):
        return f"incomplete: {found} lacks required files (see `itdr datasets {spec.id}`)"
    if found is None and not spec.downloads:
        return f"missing (place the files under ITDR_RAW_DIR/{spec.folder}; see `itdr datasets {spec.id}`)"
    if found is None:
        fetch = f"itdr fetch {spec.folder}" + (f" --category {spec.category}" if spec.category else "")
        return f"missing (set ITDR_RAW_DIR or run `{fetch}`)"
    return f"present: {found}"


@app.command()
def materialize(
    datasets: Annotated[str | None, typer.Option(help="Comma-separated dataset ids (default: demo).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all the dataset feeds).")] = None,
    since: Annotated[str | None, typer.Option(help="Filter: keep interactions from this ISO date (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Filter: keep interactions before this ISO date (UTC).")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Filter: keep ratings >= this.")] = None,
    k_core: Annotated[int, typer.Option(help="Filter: iterative k-core, users and items (e.g. 5).")] = 0,
    min_history: Annotated[int, typer.Option(help="Filter: drop users with fewer interactions.")] = 0,
) -> None:
    """Ingest, validate, render and publish datasets by running the Dagster job in-process."""
    from itdr_pipeline.filters import FilterConfig
    from itdr_pipeline.render import applicable_tasks

    ids = parse_dataset_list(datasets)
    task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else []
    for dataset in ids:  # refuse bad task names and filters before any work starts
        applicable_tasks(get_dataset(dataset), task_list or None)
    filters = FilterConfig(since, until, min_rating, k_core, k_core, min_history)
    settings = Settings.from_env().ensure()
    from assets.runner import materialize as run

    typer.echo(f"ITDR_HOME={settings.home}")
    for outcome in run(settings, ids, task_list, filters):
        if not outcome.success:
            _fail(f"{outcome.dataset}: {outcome.reason} (run {outcome.run_id})")
        meta = outcome.metadata.get("published_splits", {})
        label = " [SYNTHETIC demo data]" if get_dataset(outcome.dataset).synthetic else ""
        typer.echo(f"{outcome.dataset}{label}: published {meta.get('version')} "
                   f"({meta.get('dagster/row_count')} records) at {meta.get('path')}")
    first = ids[0]
    typer.echo("\nNext:")
    typer.echo('  itdr query "SELECT dataset, task, profile, split, count(*) FROM instructions GROUP BY ALL ORDER BY ALL"')
    typer.echo(f"  itdr export --dataset {first} --task preference --profile temporal --format alpaca --out ./export")
    typer.echo("  itdr ui    # Dagster UI on http://127.0.0.1:3000")


@app.command()
def export(
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    task: Annotated[str | None, typer.Option(help="Task id, e.g. preference (alpaca only).")] = None,
    profile: Annotated[str, typer.Option(help="Split profile, e.g. temporal or tallrec (alpaca only).")] = "temporal",
    format: Annotated[str, typer.Option("--format", help="alpaca (published splits, LLaMA-Factory JSON) or "
                                                           "recbole (filtered interactions as atomic files).")] = "alpaca",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("export"),
) -> None:
    """Write the latest published splits as Alpaca/LLaMA-Factory JSON, or a dataset as RecBole atomic files."""
    from itdr_pipeline.export import FORMATS, export_alpaca

    spec = get_dataset(dataset)
    if format == "recbole":
        from itdr_pipeline.recbole import export_recbole

        counts = export_recbole(Settings.from_env(), spec.id, out)
        typer.echo(f"wrote {', '.join(f'{spec.id}.{k} ({n} rows)' for k, n in counts.items())} to {out / spec.id}")
        return
    if format not in FORMATS:
        _fail(f"unknown format {format!r}; known: {', '.join((*FORMATS, 'recbole'))}")
    if task is None:
        _fail("--task is required for --format alpaca (e.g. --task preference)")
    counts = export_alpaca(Settings.from_env(), spec.id, task, profile, out)
    typer.echo(f"wrote {', '.join(f'{s}.json ({n})' for s, n in counts.items())} to {out}")


@app.command()
def query(sql: Annotated[str, typer.Argument(help="One read-only SQL statement.")]) -> None:
    """Run read-only SQL over the warehouse and the `instructions` view; prints tab-separated rows."""
    from itdr_pipeline.query import run_query

    columns, rows = run_query(Settings.from_env(), sql)
    typer.echo("\t".join(columns))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in row))


@app.command()
def fetch(
    dataset: Annotated[str, typer.Argument(help="Dataset or source id, e.g. ml-1m or amazon-reviews-2018.")],
    category: Annotated[str | None, typer.Option(help="For per-category sources: e.g. Gift_Cards.")] = None,
) -> None:
    """Download a dataset's official files into the cache (progress bar, resume, checksums, safe unzip)."""
    from itdr_pipeline.fetch import fetch_dataset

    spec = get_category(dataset, category) if category else get_dataset(dataset)
    folder = fetch_dataset(spec, Settings.from_env().ensure())
    typer.echo(f"{spec.id}: files in {folder}")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 3000,
) -> None:
    """Serve the Dagster UI (webserver and daemon) for this project's instance."""
    from assets.runner import prepare_instance

    settings = Settings.from_env().ensure()
    prepare_instance(settings)
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.is_file() else ["-m", "assets.definitions"]
    dagster = Path(sys.executable).with_name("dagster")
    typer.echo(f"Dagster UI on http://{host}:{port} (ITDR_HOME={settings.home})")
    os.execv(str(dagster), [str(dagster), "dev", *target, "-h", host, "-p", str(port)])


def main() -> None:
    try:
        app()
    except ItdrError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the CLI contract is one line, non-zero exit
        if os.environ.get("ITDR_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"error: {type(exc).__name__}: {first} (set ITDR_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
