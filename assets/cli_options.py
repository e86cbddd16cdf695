"""What every `itdr` command shares: the one-line failure and `--config run.yaml`."""

from pathlib import Path
from typing import Annotated

import typer


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _read_config(ctx: typer.Context, path: Path | None) -> Path | None:
    """`--config run.yaml`: the command's options as a YAML mapping (`max-steps: 300` or `max_steps: 300`);
    flags given on the command line win. Click reads it as the command's defaults (`default_map`)."""
    if path is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        raise typer.BadParameter(f"{path}:{where} {getattr(exc, 'problem', None) or exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    params = {p.name: p for p in ctx.command.params if p.name != "config"}
    values, unknown = {}, []
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in params:
            unknown.append(str(key))
        elif isinstance(value, list) and not getattr(params[name], "multiple", False):
            values[name] = ",".join(str(v) for v in value)  # `datasets: [ml-100k, steam]` = ml-100k,steam
        else:
            values[name] = value
    if unknown:
        known = ", ".join(sorted(n.replace("_", "-") for n in params))
        raise typer.BadParameter(f"{path}: unknown option(s) {', '.join(unknown)}; this command takes: {known}")
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return path


ConfigFile = Annotated[Path | None, typer.Option(
    "--config", callback=_read_config, is_eager=True, exists=True, dir_okay=False,
    help="YAML file of this command's options (e.g. `max-steps: 300`); flags given here override it.")]
