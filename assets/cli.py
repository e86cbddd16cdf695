"""`itdr`: the command line. Every failure exits non-zero with a one-line reason.

Heavy modules (Dagster, the runner) are imported inside the commands that need them, so
`itdr datasets` and `itdr query` start fast.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assets.cli_models import evaluate, train
from assets.cli_options import ConfigFile, fail
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.raw import available, find_folder
from itdr_pipeline.registry import LABEL_RULES, REGISTRY, get_category, get_dataset, parse_dataset_list
from itdr_pipeline.tasks.base import RenderSettings

_RENDER = RenderSettings()  # option defaults come from the settings' own declarations: they cannot drift

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Public recommendation data -> versioned instruction-tuning data (Dagster + DuckDB).")


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
    profiles: Annotated[str, typer.Option(help="Split profiles: temporal, leave_one_out, random_user, "
                                                "global_temporal (comma-separated).")] = "temporal",
    cap: Annotated[int, typer.Option(help="Records per (task, dataset, profile) cell, split 8:1:1; 0 = no cap.")] = _RENDER.cap,
    seed: Annotated[int, typer.Option(help="Seed of every sampling decision.")] = _RENDER.seed,
    negatives: Annotated[str, typer.Option(help="Negative candidates: uniform or popularity.")] = _RENDER.negatives,
    instructrec_negatives: Annotated[str, typer.Option(
        help="seqrec, search, psearch negatives: uniform, popularity, retriever (BM25 hard negatives) "
             "or knn (item-kNN hard negatives).")] = _RENDER.instructrec_negatives,
    instructrec_candidates: Annotated[int, typer.Option(
        help="seqrec, search, psearch: candidates per record (InstructRec: 10).")] = _RENDER.instructrec_candidates,
    instructrec_groups: Annotated[int, typer.Option(
        help="seqrec, search, psearch: valid and test lists of this many groups of --instructrec-candidates, "
             "ranked in two stages (InstructRec's 100 candidates: 10).")] = _RENDER.instructrec_groups,
    instructrec_augment: Annotated[str, typer.Option(
        help="Train-only InstructRec augmentations, comma-separated: flip (search, psearch), consistency "
             "(psearch).")] = "",
    full_ranking: Annotated[bool, typer.Option(
        "--full-ranking", help="seqrec, search, psearch: the output ranks every candidate.")] = False,
    cdr_source: Annotated[str | None, typer.Option(help="cdr: source-domain dataset id (ingested first).")] = None,
    fraction: Annotated[float, typer.Option(help="Ablation: share of train records kept (e.g. 0.25).")] = _RENDER.fraction,
    no_descriptions: Annotated[bool, typer.Option("--no-descriptions", help="Ablation: drop task descriptions.")] = False,
    root: Annotated[str | None, typer.Option(help="Ablation: render one root task only: UII or UIU.")] = None,
    unseen_template_test: Annotated[bool, typer.Option(help="Test records use each task's held-out template.")] = False,
    teacher_url: Annotated[str | None, typer.Option(help="ir/tui: OpenAI-compatible base URL of a teacher model "
                                                         "(key from $ITDR_TEACHER_API_KEY).")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="ir/tui: the teacher model name.")] = None,
    since: Annotated[str | None, typer.Option(help="Filter: keep interactions from this ISO date (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Filter: keep interactions before this ISO date (UTC).")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Filter: keep ratings >= this.")] = None,
    k_core: Annotated[int, typer.Option(help="Filter: iterative k-core, users and items (e.g. 5).")] = 0,
    min_history: Annotated[int, typer.Option(help="Filter: drop users with fewer interactions.")] = 0,
    max_bad_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Bad-row budget: fail when more than this share of a file's lines is malformed "
                               "(those under it are quarantined in rejected_rows and counted here).")] = 0.01,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail when a raw file differs from its official checksum (default: warn; also "
                         "ITDR_STRICT=1).")] = False,
    config: ConfigFile = None,
) -> None:
    """Ingest, validate, filter, render and publish datasets by running the Dagster job in-process."""
    from itdr_pipeline.filters import FilterConfig
    from itdr_pipeline.render import applicable_tasks
    from itdr_pipeline.tasks.base import RenderSettings

    ids = parse_dataset_list(datasets)
    task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else []
    render = {"profiles": [p.strip() for p in profiles.split(",") if p.strip()], "cap": cap, "seed": seed,
              "negatives": negatives, "cdr_source": cdr_source, "fraction": fraction,
              "instructrec_negatives": instructrec_negatives, "instructrec_candidates": instructrec_candidates,
              "instructrec_groups": instructrec_groups, "instructrec_full_ranking": full_ranking,
              "instructrec_augment": [a.strip() for a in instructrec_augment.split(",") if a.strip()],
              "descriptions": not no_descriptions, "root": root, "unseen_template_test": unseen_template_test,
              "teacher_base_url": teacher_url, "teacher_model": teacher_model}
    if (teacher_url is None) != (teacher_model is None):
        fail("--teacher-url and --teacher-model go together")
    if cdr_source is not None:
        get_dataset(cdr_source)
    RenderSettings(**{**render, "profiles": tuple(render["profiles"]),
                      "instructrec_augment": tuple(render["instructrec_augment"])})  # refuse bad settings before any work
    for dataset in ids:  # ... and bad task names
        applicable_tasks(get_dataset(dataset), task_list or None, root)
    filters = FilterConfig(since, until, min_rating, k_core, k_core, min_history)
    settings = Settings.from_env().ensure()
    from assets.runner import materialize as run

    typer.echo(f"ITDR_HOME={settings.home}")
    for outcome in run(settings, ids, task_list, filters, render, {"max_reject_share": max_bad_share,
                                                                   "strict": strict}):
        if not outcome.success:
            said = outcome.reason.startswith(f"{outcome.dataset}: ")  # most errors name their dataset
            fail(f"{'' if said else outcome.dataset + ': '}{outcome.reason} (run {outcome.run_id})")
        meta = outcome.metadata.get("published_splits", {})
        label = " [SYNTHETIC demo data]" if get_dataset(outcome.dataset).synthetic else ""
        typer.echo(f"{outcome.dataset}{label}: published {meta.get('version')} "
                   f"({meta.get('dagster/row_count')} records) at {meta.get('path')}")
        _say_raw_quality(outcome.dataset, outcome.metadata.get("rejected_rows", {}), max_bad_share)
    first = ids[0]
    # The export hint names a task that was rendered: preference where the dataset feeds it, else the first fed.
    fed = applicable_tasks(get_dataset(first), task_list or None, root)
    hint = "preference" if "preference" in fed else fed[0] if fed else "preference"
    typer.echo("\nNext:")
    typer.echo('  itdr query "SELECT dataset, task, profile, split, count(*) FROM instructions GROUP BY ALL ORDER BY ALL"')
    typer.echo(f"  itdr export --dataset {first} --task {hint} --profile temporal --format alpaca --out ./export")
    typer.echo("  itdr ui    # Dagster UI on http://127.0.0.1:3000")


def _say_raw_quality(dataset: str, meta: dict[str, object], budget: float) -> None:
    """What the summary line alone would hide: quarantined lines per file and reason, and raw files
    that differ from their official checksums."""
    by_file: dict[str, dict[str, int]] = meta.get("rejected_by_file") or {}
    if by_file:
        total = sum(n for reasons in by_file.values() for n in reasons.values())
        typer.echo(f"  quarantined {total} malformed line(s), under the {budget:.1%} per-file budget:")
        for file, reasons in by_file.items():
            typer.echo(f"    {file}: " + ", ".join(f"{reason} {n}" for reason, n in reasons.items()))
        typer.echo(f"    lines and reasons: itdr query \"SELECT * FROM rejected_rows WHERE dataset = '{dataset}'\"")
    if modified := meta.get("modified_files"):
        for note in str(modified).split("; "):
            typer.echo(f"warning: {dataset}: {note} (--strict makes this fatal)", err=True)


app.command()(train)  # declared in assets.cli_models, listed here in this order
app.command()(evaluate)


@app.command("tasks")
def tasks_matrix(
    present: Annotated[bool, typer.Option("--present", help="Only datasets whose raw files are present.")] = False,
) -> None:
    """Which dataset feeds which task (the applicability matrix); x = feeds, . = does not."""
    from itdr_pipeline.taskspec import TASK_SPECS, TASKS

    settings = Settings.from_env()
    specs = [s for s in REGISTRY.values() if not present or s.synthetic or available(s, settings)]
    width = max(len(s.id) for s in specs) if specs else 10
    root_of = {s.id: s.root for s in TASK_SPECS}
    typer.echo(f"{'dataset':<{width}}  " + "  ".join(f"{t:>11}" for t in TASKS))
    typer.echo(f"{'(root task)':<{width}}  " + "  ".join(f"{root_of[t]:>11}" for t in TASKS))
    for spec in specs:
        typer.echo(f"{spec.id:<{width}}  " + "  ".join(f"{'x' if t in spec.tasks else '.':>11}" for t in TASKS))
    typer.echo("\ncdr needs a source domain: the registry's partner (Amazon 2023 pairs) or --cdr-source.")


@app.command()
def templates(
    task: Annotated[str | None, typer.Option(help="Only this task's templates.")] = None,
    axes: Annotated[str | None, typer.Option(
        help="Only templates with these InstructRec axes, e.g. P1,I2 or P2I0T3 (P0-P2, I0-I2, T0-T3).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Print the template text, not just the listing.")] = False,
) -> None:
    """List the instruction templates (id, task, axes, held-out flag, profiles, task description)."""
    from itdr_pipeline.taskspec import TASKS
    from itdr_pipeline.templates import axes_filter, load_task_templates

    if task is not None and task not in TASKS:
        fail(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    try:
        wanted = axes_filter(axes) if axes is not None else set()
    except ValueError as exc:
        fail(str(exc))
    for name in [task] if task else TASKS:
        for t in load_task_templates(name):
            if not wanted <= set(t.axes):
                continue
            flag = "held-out" if t.held_out else f"augment:{t.augmentation}" if t.augmentation else "seen"
            typer.echo(f"{t.id}\t{name}\t{t.axes_label}\t{flag}\t{','.join(t.profiles)}\t{t.description_source}")
            if full:
                typer.echo(f"  input:\n{_indent(t.input_source)}\n  output:\n{_indent(t.output_source)}\n")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


@app.command()
def export(
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    task: Annotated[str | None, typer.Option(help="Task id, e.g. preference (alpaca only).")] = None,
    profile: Annotated[str, typer.Option(help="Split profile, e.g. temporal or tallrec (alpaca only).")] = "temporal",
    format: Annotated[str, typer.Option("--format", help="alpaca (published splits, LLaMA-Factory JSON) or "
                                                           "recbole (filtered interactions as atomic files).")] = "alpaca",
    out: Annotated[Path, typer.Option(help="Output folder (alpaca: the files go in it; recbole: in "
                                            "<out>/<dataset>/). Must be empty or new.")] = Path("export"),
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder as a whole.")] = False,
) -> None:
    """Write the latest published splits as Alpaca/LLaMA-Factory JSON, or a dataset as RecBole atomic files
    (every format: itdr_pipeline/formats.py)."""
    from itdr_pipeline.formats import ExportRequest
    from itdr_pipeline.formats import export as write

    spec = get_dataset(dataset)
    folder, counts = write(Settings.from_env(), format, ExportRequest(spec.id, out, force, task, profile))
    typer.echo(f"wrote {', '.join(f'{name} ({n} rows)' for name, n in counts.items())} to {folder}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SQL statement.")],
    timeout: Annotated[float, typer.Option(help="Stop the query after this many seconds (0 = no limit).")] = 300.0,
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit for the query, e.g. 2GB.")] = "4GB",
) -> None:
    """Run read-only SQL over the catalog (tables and the `instructions` view); prints tab-separated
    rows. Never blocked by a running materialization: it reads the last committed state."""
    from itdr_pipeline.query import run_query

    columns, rows = run_query(Settings.from_env(), sql, timeout, memory_limit)
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
    code = 0
    try:
        app()
    except SystemExit as exc:  # typer ends every command this way
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            typer.echo(exc.code, err=True)
    except ItdrError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 1
    except Exception as exc:  # noqa: BLE001 - the CLI contract is one line, non-zero exit
        if os.environ.get("ITDR_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"error: {type(exc).__name__}: {first} (set ITDR_DEBUG=1 for the traceback)", err=True)
        code = 1
    _exit(code)


def _exit(code: int) -> None:
    """End without interpreter teardown. Every file, connection and Dagster instance is closed by
    now; what teardown would add is duckdb's nanobind bindings reporting its module-level type
    constants as "leaked" (a wall of noise on stderr after every command that ran a job)."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # `itdr query ... | head` closed the pipe: nothing to say
            pass
    os._exit(code)
