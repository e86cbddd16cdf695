"""Run the main job in-process for the CLI (`itdr materialize`), against a persistent instance.

Runs land in $ITDR_HOME/dagster, the same instance `itdr ui` serves, so materializations,
check results, data versions and lineage made from the command line show up in the UI.
"""

import os
import signal
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from assets import interrupts
from assets.definitions import build_definitions
from assets.resources import add_partitions, present_datasets
from itdr_pipeline.config import Settings
from itdr_pipeline.filters import FilterConfig
from itdr_pipeline.tasks.base import TASKS

_MARKER = "# Written by itdr-pipeline"
_INSTANCE_YAML = f"""\
{_MARKER} (rewritten when it changes; delete this line to keep your own edits).
# No Dagster pools: each partition's working file has an OS lock that dies with its holder, so a
# crashed run never blocks the next one. Run monitoring (daemon, i.e. `itdr ui`) marks a run whose
# worker died as failed, and frees anything it held.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class RunOutcome:
    dataset: str
    success: bool
    run_id: str
    reason: str  # one line: the failed check or error, empty on success
    metadata: dict[str, dict[str, object]]  # asset -> metadata values of its materialization


def prepare_instance(settings: Settings) -> None:
    """Point DAGSTER_HOME at $ITDR_HOME/dagster and give it the project's instance config."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.is_file() or (config.read_text().startswith(_MARKER) and config.read_text() != _INSTANCE_YAML):
        config.write_text(_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    # Two commands starting at once on a new home would both migrate the new SQLite storage
    # (alembic race: "table run_tags already exists"): the first creates it under a lock.
    import fcntl

    with open(settings.dagster_home / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with dg.DagsterInstance.get() as instance:
            instance.get_runs(limit=1)
            add_partitions(instance, present_datasets(settings))  # what the UI offers: the datasets there


_PID_TAG, _HOST_TAG = "itdr/pid", "itdr/host"


def _run_tags() -> dict[str, str]:
    """Which process runs it: lets a later command tell a dead in-process run from a live one."""
    return {_PID_TAG: str(os.getpid()), _HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark as failed the in-process runs of this host whose process died (kill -9, OOM): without
    this they would show as STARTED in the UI forever. Returns their run ids."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pid, host = run.tags.get(_PID_TAG), run.tags.get(_HOST_TAG)
        if pid and host == socket.gethostname() and not _alive(int(pid)):
            instance.report_run_failed(run, f"the process running it (pid {pid}) died without finishing; "
                                            "marked failed by itdr when the next command started")
            failed.append(run.run_id)
    return failed


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or `kill`) stops a run like Ctrl-C does: Dagster ends it as a failure
    with the interruption in its event log, and every lock is released on the way out."""
    def handler(_signum: int, _frame: object) -> None:
        signal.raise_signal(signal.SIGINT)  # the path Dagster's own interrupt handling knows

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with interrupts.never_lost():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _innermost(error: object) -> str:
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = getattr(error, "message", str(error)).strip().splitlines()
    message = lines[0] if lines else type(error).__name__
    interrupted = ("KeyboardInterrupt", "InterruptException", "DagsterExecutionInterruptedError")
    if getattr(error, "cls_name", "") in interrupted or any(w in message for w in (*interrupted, "Query interrupted")):
        return "interrupted (Ctrl-C or SIGTERM): the run is marked failed, nothing was committed"
    head, _, rest = message.partition(": ")
    return rest if head.endswith("Error") and rest else message


def _failure_reason(result: dg.ExecuteInProcessResult) -> str:
    failed_checks = [e for e in result.get_asset_check_evaluations()
                     if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    if failed_checks:
        return "; ".join(f"check {e.asset_check_key.asset_key.to_user_string()}:{e.asset_check_key.name} failed: "
                         f"{e.description}" for e in failed_checks)
    for event in result.get_step_failure_events():  # Dagster's own record of why each step failed
        error = event.step_failure_data.error
        if error is not None:
            return _innermost(error)
    run_failure = result.get_run_failure_event()
    if run_failure is not None and run_failure.job_failure_data and run_failure.job_failure_data.error:
        return _innermost(run_failure.job_failure_data.error)
    return "run failed (see the Dagster UI for the event log)"


def main_selection(job: dg.JobDefinition, tasks: list[str]) -> list[dg.AssetKey]:
    """The main job's assets for these tasks: every asset but the other tasks' records."""
    return sorted(key for key in job.asset_layer.executable_asset_keys
                  if not key.path[-1].endswith("_records") or key.path[-1].removesuffix("_records") in tasks)


def main_ops(job: dg.JobDefinition, tasks: list[str]) -> list[str]:
    """The same selection as op names (`dagster job execute --op-selection`); one op may make several assets."""
    return sorted({job.asset_layer.get(key).assets_def.op.name for key in main_selection(job, tasks)})


def load_job(settings: Settings, name: str) -> dg.JobDefinition:
    """One of the definitions' jobs, loaded under an instance of its own. Loading reads the current
    instance's definitions-state storage from a context variable; one left there by an instance
    that was entered, never exited and then collected fails every later load in the process
    ("Attempted to resolve undefined DagsterInstance weakref", seen once in a CI worker)."""
    with dg.DagsterInstance.ephemeral():  # no state storage: the variable is None while it loads
        return build_definitions(settings).resolve_job_def(name)


def materialize(settings: Settings, datasets: list[str], tasks: list[str],
                filters: FilterConfig | None = None, render: dict[str, object] | None = None,
                ingest: dict[str, object] | None = None) -> list[RunOutcome]:
    """Run the main job once per dataset; `render` holds RenderConfig fields (profiles, cap, ablations...),
    `ingest` IngestConfig fields (bad-row budget, strict checksums)."""
    prepare_instance(settings)
    job = load_job(settings, "main")
    chosen = tasks or list(TASKS)  # each render asset of a task the dataset does not feed skips itself
    run_config = {
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        "ops": {**{f"{task}_records": {"config": dict(render or {})} for task in chosen},
                "filtered_interactions": {"config": (filters or FilterConfig()).as_dict()},
                "canonical_tables": {"config": dict(ingest or {})}},
    }
    selection = main_selection(job, chosen)
    outcomes = []
    with dg.DagsterInstance.get() as instance, _terminate_as_interrupt():
        fail_dead_runs(instance)
        for dataset in datasets:
            add_partitions(instance, [dataset])  # e.g. a dataset whose files a run is about to report missing
            result = job.execute_in_process(partition_key=dataset, instance=instance, run_config=run_config,
                                            raise_on_error=False, asset_selection=selection, tags=_run_tags())
            metadata = {
                mat.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
                for node in ("canonical_tables", "published_splits")
                for mat in result.asset_materializations_for_node(node)
            } if result.success else {}
            outcomes.append(RunOutcome(dataset, result.success, result.run_id,
                                       "" if result.success else _failure_reason(result), metadata))
            if not result.success:
                break
    return outcomes


def train(settings: Settings, dataset: str, config: dict[str, object], evaluate_only: bool = False) -> RunOutcome:
    """Run the `train` job (adapter, then report) or the `evaluate` job for one dataset; `config`
    holds assets.training.TrainingConfig fields. Progress streams to stderr from the training process."""
    prepare_instance(settings)
    # Dagster's own Pipes code calls one of its preview functions; the warning is not for our users.
    warnings.filterwarnings("ignore", message=".*PipesMessageReader.expected_writer_count.*")
    job = load_job(settings, "evaluate" if evaluate_only else "train")
    steps = ["evaluation_report"] if evaluate_only else ["lora_adapter", "evaluation_report"]
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                  "ops": {step: {"config": config} for step in steps}}
    with dg.DagsterInstance.get() as instance, _terminate_as_interrupt():
        fail_dead_runs(instance)
        add_partitions(instance, [dataset])
        result = job.execute_in_process(partition_key=dataset, instance=instance, run_config=run_config,
                                        raise_on_error=False, tags=_run_tags())
    metadata = {mat.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
                for step in steps for mat in result.asset_materializations_for_node(step)} if result.success else {}
    return RunOutcome(dataset, result.success, result.run_id, "" if result.success else _failure_reason(result),
                      metadata)
