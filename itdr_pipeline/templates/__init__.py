"""The template registry: instruction templates as data (YAML + Jinja2), one file per task.

The task description is kept apart from the input, so "without task description" is a switch.
Each template has an id; at most one per task may be `held_out` for unseen-template evaluation
(it is listed but never used for rendering unless asked for).

Every template carries InstructRec's three axes (Zhang et al. 2023), from its file's `axes` or
its own: preference P0 (none), P1 (implicit: past items), P2 (explicit: a description of the
user); intention I0 (none), I1 (vague), I2 (specific); task form T0 (pointwise yes/no or a
score), T1 (pairwise), T2 (matching or generation), T3 (re-ranking a candidate list).
"""

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent
# A template without `profiles` serves every split profile (tallrec is opt-in: it reproduces TALLRec's strings).
DEFAULT_PROFILES = ("temporal", "leave_one_out", "random_user", "global_temporal")

AUGMENTATIONS = ("flip", "consistency")  # InstructRec's: input/output flipping, preference-intention consistency
AXES = {"P": ("P0", "P1", "P2"), "I": ("I0", "I1", "I2"), "T": ("T0", "T1", "T2", "T3")}

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.filters["dq"] = lambda text: f'"{text}"'


@dataclass(frozen=True)
class Template:
    id: str
    task: str
    profiles: tuple[str, ...]
    held_out: bool
    axes: tuple[str, str, str]  # (P, I, T), e.g. ("P1", "I2", "T3")
    augmentation: str | None  # None, or "flip" / "consistency": drawn only for InstructRec augmentations
    description: jinja2.Template
    input: jinja2.Template
    output: jinja2.Template
    description_source: str  # the raw template text, for listings
    input_source: str
    output_source: str

    @property
    def axes_label(self) -> str:
        return "".join(self.axes)

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        return self.description.render(context), self.input.render(context), self.output.render(context)


def parse_axes(value: object, where: str) -> tuple[str, str, str]:
    """`{P: P1, I: I0, T: T3}` -> ("P1", "I0", "T3"), each value checked."""
    if not isinstance(value, dict) or set(value) != set(AXES):
        raise ValueError(f"{where}: axes must be a mapping with keys P, I and T, got {value!r}")
    for axis, allowed in AXES.items():
        if value[axis] not in allowed:
            raise ValueError(f"{where}: axis {axis} must be one of {', '.join(allowed)}, got {value[axis]!r}")
    return (value["P"], value["I"], value["T"])


def axes_filter(text: str) -> set[str]:
    """"P1,I2" or "P1I2T3" -> {"P1", "I2"}; refuses unknown values."""
    wanted = set(re.findall(r"[A-Za-z]\d", text.upper()))
    known = {v for values in AXES.values() for v in values}
    bad = sorted(wanted - known)
    if bad or not wanted:
        raise ValueError(f"unknown axis value(s) {bad or [text]}; known: {', '.join(sorted(known))}")
    return wanted


@cache
def load_task_templates(task: str) -> tuple[Template, ...]:
    path = TEMPLATE_DIR / f"{task}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "axes" not in data and any("axes" not in t for t in data["templates"]):
        raise ValueError(f"{path.name}: give `axes` for the file or for every template")
    templates = tuple(
        Template(
            id=t["id"],
            task=task,
            profiles=tuple(t.get("profiles", DEFAULT_PROFILES)),
            held_out=bool(t.get("held_out", False)),
            axes=parse_axes(t.get("axes", data.get("axes")), f"{path.name}: {t['id']}"),
            augmentation=t.get("augmentation"),
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
    odd = [t.id for t in templates if t.augmentation not in (None, *AUGMENTATIONS) or (t.augmentation and t.held_out)]
    if odd:
        raise ValueError(f"{task}.yaml: augmentation must be one of {AUGMENTATIONS} and never held out: {odd}")
    return templates


def templates_for(task: str, profile: str, include_held_out: bool = False) -> list[Template]:
    """The task's own templates for a profile (augmentation templates are never among them)."""
    chosen = [t for t in load_task_templates(task) if profile in t.profiles and not t.augmentation
              and (include_held_out or not t.held_out)]
    if not chosen:
        raise ValueError(f"no template for task {task!r}, profile {profile!r}")
    return chosen


def augmentation_templates(task: str, kind: str) -> list[Template]:
    chosen = [t for t in load_task_templates(task) if t.augmentation == kind]
    if not chosen:
        raise ValueError(f"no {kind!r} augmentation template for task {task!r}")
    return chosen


def templates_sha256(tasks: list[str]) -> str:
    """Hash of the template files behind `tasks`: part of every published version id."""
    digest = hashlib.sha256()
    for name in [*sorted(tasks), "domains"]:
        digest.update((TEMPLATE_DIR / f"{name}.yaml").read_bytes())
    return digest.hexdigest()
