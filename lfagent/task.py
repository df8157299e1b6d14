"""The task spec (`task.yaml`): a public contract. Keep fields stable; extend, never rename."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lfagent.errors import InputError


class ClassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="the class name the labels use (as in the seeds' label column)")
    description: str = Field("", description="what belongs in the class; LLM prompts quote it, and keywords "
                                             "an LLM proposes are vouched for by meaning only when every class has one")

    @model_validator(mode="before")
    @classmethod
    def _rejoin_flow_commas(cls, value):
        # In `{name: SPAM, description: Self-promotion, links, requests}` YAML splits the description at
        # each comma into keys with null values. Join them back: the flow style is the documented form.
        if isinstance(value, dict) and "description" in value:
            known = {"name", "description"}
            strays = [k for k, v in value.items() if k not in known and v is None]
            if strays:
                rest = {k: v for k, v in value.items() if k not in strays}
                rest["description"] = ", ".join([str(value["description"]), *map(str, strays)])
                return rest
        return value


class TaskSpec(BaseModel):
    """What to label. Paths are relative to the task file's folder."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="the task's name; the default run directory is runs/NAME")
    description: str = Field("", description="what to label, in a sentence; LLM prompts quote it")
    classes: list[ClassSpec] = Field(min_length=2, description="at least two: `{name, description}` mappings, "
                                                               "or just names (`[HAM, SPAM]`)")
    multi_label: bool = Field(False, description="true: a record may carry several classes (the label is a list)")
    text_field: str = Field("text", description="the record field holding the text")
    label_field: str = Field("label", description="the seeds' (and test records') field holding the class name; "
                                                  "when multi_label, a list of names or one comma-separated string")
    id_field: str = Field("id", description="the record field holding its id; without one, the 0-based row number")
    seeds: str = Field(description="labelled records to learn from (about 100): JSONL, CSV, Parquet or WRENCH JSON")
    unlabeled: str | None = Field(None, description="records to label; silver.jsonl has one line per record")
    # Optional held-out gold set; only evaluation reads it, never selection or calibration.
    test: str | None = Field(None, description="optional labelled records used only to evaluate, never to "
                                               "select or calibrate")
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_from_names(cls, value):
        # Allow the short form `classes: [HAM, SPAM]`.
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_class_names(self):
        names = [c.name for c in self.classes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"class names must be unique; repeated: {dupes}")
        return self

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def cardinality(self) -> int:
        return len(self.classes)

    def class_index(self, name: str) -> int:
        return self.class_names.index(name)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else (self.base_dir / path)

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_task(path: str | Path) -> TaskSpec:
    """Read and validate a task.yaml; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("task file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=path, line=line) from None
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of fields (name, classes, seeds, ...)", path=path)
    try:
        task = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        line = _line_of_key(path, str(err["loc"][0])) if err["loc"] else None
        raise InputError(err["msg"], path=path, line=line, field=field) from None
    task.base_dir = path.resolve().parent
    return task


def _line_of_key(path: Path, key: str) -> int | None:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.startswith(f"{key}:"):
            return number
    return None
