"""The template registry: instruction templates as data (YAML + Jinja2), one file per task.

The task description is kept apart from the input, so "without task description" is a switch.
Each template has an id; at most one per task may be `held_out` for unseen-template evaluation
(it is listed but never used for rendering unless asked for).
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent
# A template without `profiles` serves every split profile (tallrec is opt-in: it reproduces TALLRec's strings).
DEFAULT_PROFILES = ("temporal", "leave_one_out", "random_user", "global_temporal")

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.filters["dq"] = lambda text: f'"{text}"'


@dataclass(frozen=True)
class Template:
    id: str
    task: str
    profiles: tuple[str, ...]
    held_out: bool
    description: jinja2.Template
    input: jinja2.Template
    output: jinja2.Template
    description_source: str  # the raw template text, for listings
    input_source: str
    output_source: str

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        return self.description.render(context), self.input.render(context), self.output.render(context)


@cache
def load_task_templates(task: str) -> tuple[Template, ...]:
    data = yaml.safe_load((TEMPLATE_DIR / f"{task}.yaml").read_text(encoding="utf-8"))
    templates = tuple(
        Template(
            id=t["id"],
            task=task,
            profiles=tuple(t.get("profiles", DEFAULT_PROFILES)),
            held_out=bool(t.get("held_out", False)),
            description=_ENV.from_string(t["description"].strip()),
            input=_ENV.from_string(t["input"]),
            output=_ENV.from_string(t["output"]),
            description_source=" ".join(t["description"].split()),
            input_source=t["input"],
            output_source=t["output"],
        )
        for t in data["templates"]
    )
    ids = [t.id for t in templates]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{task}.yaml: duplicate template ids in {ids}")
    if sum(t.held_out for t in templates) > 1:
        raise ValueError(f"{task}.yaml: at most one template may be held out")
    return templates


def templates_for(task: str, profile: str, include_held_out: bool = False) -> list[Template]:
    chosen = [t for t in load_task_templates(task) if profile in t.profiles and (include_held_out or not t.held_out)]
    if not chosen:
        raise ValueError(f"no template for task {task!r}, profile {profile!r}")
    return chosen


def templates_sha256(tasks: list[str]) -> str:
    """Hash of the template files behind `tasks`: part of every published version id."""
    digest = hashlib.sha256()
    for name in [*sorted(tasks), "domains"]:
        digest.update((TEMPLATE_DIR / f"{name}.yaml").read_bytes())
    return digest.hexdigest()
