"""`lfagent init`: from a user's labelled file and unlabeled corpus to a runnable task folder.

Reads the two columns that matter (text, label; an id if there is one), finds the classes, tells single-
from multi-label, draws seeds (stratified, seeded) when asked, and writes `task.yaml` next to the seeds.
Whatever cannot work is refused with one InputError naming the file, the line and the field.

Imports stay light (readers, yaml, the task model): `lfagent init` must start fast on a core install.
"""
from __future__ import annotations

import glob
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from lfagent.data.readers import detect_format, iter_rows, open_parquet
from lfagent.errors import InputError

MIN_SEEDS_PER_CLASS = 5  # fewer, and cross-fitting leaves folds without the class: accuracy is noise
MAX_CLASSES = 100  # more distinct values than this is a free-text or id column, not a set of classes
SEPARATORS = ("|", ";", ",")  # tried in this order for multi-label cells such as `a|b`
DEFAULT_UNLABELED_ROWS = 20_000  # sample drawn when --unlabeled names several files
DEFAULT_TEST_ROWS = 2_000  # labelled rows left over by --seeds kept as a held-out test set


@dataclass
class LabeledRow:
    line: int  # where it is in the labelled file, for errors and as an id when the file has none
    id: object
    text: str
    labels: list[str]
    row: dict  # every field, as read: code LFs may read them


@dataclass
class InitOptions:
    labeled: Path
    unlabeled: list[str]  # paths or globs
    text_column: str
    label_column: str
    out: Path
    id_column: str | None = None
    seeds: int | None = None  # draw this many seeds (stratified); None: every labelled row is a seed
    seed: int = 0
    name: str | None = None
    separator: str | None = None  # force multi-label with this separator
    single_label: bool = False  # force single-label (a label that contains a separator is one class)
    unlabeled_rows: int = DEFAULT_UNLABELED_ROWS
    test_rows: int = DEFAULT_TEST_ROWS
    force: bool = False
    classes: list[str] | None = None  # every class of the task, also those no labelled row carries


@dataclass
class InitResult:
    task_path: Path
    classes: list[str]
    counts: dict[str, int]  # seeds per class
    multi_label: bool
    separator: str | None
    n_labeled: int
    n_seeds: int
    n_test: int
    unlabeled: str  # as written in task.yaml
    n_unlabeled_sampled: int | None  # rows copied when several files were sampled, else None
    notes: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------------

def _rows(path: Path):
    """iter_rows, with OS errors (permissions, a folder given as a file) as InputErrors."""
    try:
        yield from iter_rows(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _require_columns(path: Path, line: int | None, row: dict, columns: list[str]) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise InputError(f"no {noun} {', '.join(map(repr, missing))}; the columns are {sorted(map(str, row))}",
                         path=path, line=line, field=missing[0])


def parse_label_cell(value, *, path: Path, line: int, field_name: str):
    """A label cell as a list (JSON list, or a list value) or as a string; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays from Parquet lists
        return [str(v).strip() for v in value.tolist()]
    if isinstance(value, dict):
        raise InputError("a label must be a string, a number or a list, not an object", path=path, line=line,
                         field=field_name)
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return text
        if isinstance(items, list):
            return [str(v).strip() for v in items]
    return text if text else None


def read_labeled(options: InitOptions) -> tuple[list[LabeledRow], list]:
    """Every labelled row (labels still raw) and the raw label cells, in file order."""
    path = options.labeled
    columns = [options.text_column, options.label_column] + ([options.id_column] if options.id_column else [])
    rows, cells, seen_ids = [], [], {}
    for line, row in _rows(path):
        _require_columns(path, line, row, columns)
        text = row[options.text_column]
        if text is None or isinstance(text, (dict, list)):
            raise InputError(f"text must be a string, got {'nothing' if text is None else type(text).__name__}",
                             path=path, line=line, field=options.text_column)
        cell = parse_label_cell(row[options.label_column], path=path, line=line, field_name=options.label_column)
        if cell is None:
            raise InputError("empty label; every row of the labelled file needs one", path=path, line=line,
                             field=options.label_column)
        rid = row[options.id_column] if options.id_column else line
        if options.id_column:
            if rid is None or isinstance(rid, (dict, list)):
                raise InputError("id must be a string or a number", path=path, line=line, field=options.id_column)
            if rid in seen_ids:
                raise InputError(f"duplicate id {rid!r} (first on line {seen_ids[rid]})", path=path, line=line,
                                 field=options.id_column)
            seen_ids[rid] = line
        rows.append(LabeledRow(line=line, id=rid, text=str(text), labels=[], row=row))
        cells.append(cell)
    if not rows:
        raise InputError("the labelled file has no rows", path=path)
    if not any(r.text.strip() for r in rows):
        raise InputError(f"the text column is empty in all {len(rows)} rows", path=path, line=rows[0].line,
                         field=options.text_column)
    return rows, cells


# -- classes -------------------------------------------------------------------------------------

def detect_multi_label(cells: list, *, separator: str | None = None, single_label: bool = False,
                       ) -> tuple[bool, str | None]:
    """(multi-label?, the separator splitting string cells, or None).

    Lists are multi-label. A separator is taken when splitting on it leaves fewer distinct labels than
    there are distinct cells: `a`, `b`, `a|b` is two labels; `Arts, Culture` next to `Sports` is not.
    """
    if separator:
        return True, separator
    if single_label:
        return False, None
    if any(isinstance(c, list) for c in cells):
        return True, None
    distinct = set(cells)
    for sep in SEPARATORS:
        if not any(sep in c for c in distinct):
            continue
        pieces = {p.strip() for c in distinct for p in c.split(sep) if p.strip()}
        if len(pieces) < len(distinct):
            return True, sep
    return False, None


def split_cell(cell, multi_label: bool, separator: str | None) -> list[str]:
    if isinstance(cell, list):
        labels = cell
    elif multi_label and separator:
        labels = cell.split(separator)
    else:
        labels = [cell]
    return sorted({label.strip() for label in labels if label.strip()})


def assign_labels(rows: list[LabeledRow], cells: list, multi_label: bool, separator: str | None,
                  options: InitOptions) -> list[str]:
    """Fill each row's labels and return the classes, most frequent first; refuse what cannot work."""
    for row, cell in zip(rows, cells):
        row.labels = split_cell(cell, multi_label, separator)
        if not multi_label and isinstance(cell, list) and len(row.labels) != 1:
            raise InputError(f"{len(row.labels)} labels in a single-label file", path=options.labeled,
                             line=row.line, field=options.label_column)
    counts = class_counts(rows)
    where = dict(path=options.labeled, field=options.label_column)
    if len(counts) > MAX_CLASSES:
        examples = ", ".join(repr(c) for c, _ in counts.most_common(3))
        raise InputError(f"{len(counts)} distinct labels (e.g. {examples}): more than {MAX_CLASSES} looks like "
                         "a text or id column, not classes; check --label-column", **where)
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise InputError(f"only one class ({only!r}) in {len(rows)} rows; a classifier needs at least two",
                         **where)
    return [c for c, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def declared_classes(found: list[str], options: InitOptions) -> list[str]:
    """The classes --classes names that no labelled row carries (a class is a class without seeds);
    a label outside --classes is refused."""
    if not options.classes:
        return []
    stray = [c for c in found if c not in options.classes]
    if stray:
        raise InputError(f"label(s) {stray} are not among --classes {options.classes}", path=options.labeled,
                         field=options.label_column)
    return [c for c in dict.fromkeys(options.classes) if c not in found]


def class_counts(rows: list[LabeledRow]) -> Counter:
    return Counter(label for row in rows for label in row.labels)


# -- seeds ---------------------------------------------------------------------------------------

def stratified_sample(rows: list[LabeledRow], n: int, seed: int) -> tuple[list[LabeledRow], list[LabeledRow]]:
    """(seeds, the rest): each class gets its share of `n` and at least MIN_SEEDS_PER_CLASS where it has
    them (rarest class first, so multi-label rows drawn for it count for the others too); then random rows
    fill up to `n`. Seeds keep file order."""
    if n >= len(rows):
        return list(rows), []
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    counts = class_counts(rows)
    quota = {c: max(MIN_SEEDS_PER_CLASS, n * count // len(rows)) for c, count in counts.items()}
    chosen: set[int] = set()
    have: Counter = Counter()
    for cls in sorted(counts, key=lambda c: (counts[c], c)):
        for i in order:
            if have[cls] >= quota[cls]:
                break
            if i not in chosen and cls in rows[i].labels:
                chosen.add(i)
                have.update(rows[i].labels)
    for i in order:
        if len(chosen) >= n:
            break
        chosen.add(i)
    return [rows[i] for i in sorted(chosen)], [rows[i] for i in range(len(rows)) if i not in chosen]


def check_seed_counts(seeds: list[LabeledRow], classes: list[str], options: InitOptions,
                      unseeded: list[str] = ()) -> None:
    """Refuse a class with a few seeds (`unseeded`: declared with --classes and in no labelled row, is allowed)."""
    counts = class_counts(seeds)
    few = [c for c in classes if counts[c] < MIN_SEEDS_PER_CLASS and c not in unseeded]
    if not few:
        return
    detail = "; ".join(f"{c!r} has {counts[c]} (line{'s' if counts[c] != 1 else ''} "
                       f"{', '.join(str(r.line) for r in seeds if c in r.labels)})" for c in few)
    more = " (raise --seeds)" if options.seeds else ""
    raise InputError(f"fewer than {MIN_SEEDS_PER_CLASS} seeds of a class: {detail}; label more of them{more} "
                     "or merge the class into another", path=options.labeled, field=options.label_column)


# -- unlabeled -----------------------------------------------------------------------------------

def resolve_unlabeled(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        if not matches:
            raise InputError("no file matches" if glob.has_magic(pattern) else "data file not found", path=pattern)
        paths += [Path(m) for m in matches if Path(m).is_file()]
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise InputError("matches only folders, no data file", path=patterns[0])
    return unique


def check_unlabeled_columns(paths: list[Path], columns: list[str]) -> None:
    """The text (and id) column in each file: a Parquet schema, or a file's first row."""
    for path in paths:
        if detect_format(path) == "parquet":
            names = open_parquet(path).schema_arrow.names
            _require_columns(path, None, dict.fromkeys(names), columns)
            continue
        for line, row in _rows(path):
            _require_columns(path, line, row, columns)
            break
        else:
            raise InputError("the unlabeled file has no rows", path=path)


def sample_unlabeled(paths: list[Path], n: int, seed: int) -> tuple[list[dict], int]:
    """A uniform sample of `n` rows over all files (reservoir, seeded), in file order; and the rows seen."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, dict]] = []
    seen = 0
    for path in paths:
        for _, row in _rows(path):
            if len(reservoir) < n:
                reservoir.append((seen, row))
            else:
                j = rng.randrange(seen + 1)
                if j < n:
                    reservoir[j] = (seen, row)
            seen += 1
    return [row for _, row in sorted(reservoir, key=lambda item: item[0])], seen


# -- writing -------------------------------------------------------------------------------------

def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def seed_record(row: LabeledRow, options: InitOptions, multi_label: bool, id_field: str) -> dict:
    record = {id_field: row.id, **{k: v for k, v in row.row.items() if k != id_field}}
    record[options.text_column] = row.text
    record[options.label_column] = row.labels if multi_label else row.labels[0]
    return record


def _scalar(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def render_task_yaml(*, name: str, options: InitOptions, classes: list[str], seed_counts: dict[str, int],
                     labeled_counts: dict[str, int], multi_label: bool, id_field: str, unlabeled: str,
                     unlabeled_note: str, test: str | None) -> str:
    width = max(len(_scalar(c)) for c in classes)
    class_lines = []
    for c in classes:
        of = f" (of {labeled_counts.get(c, 0):,} labelled)" if labeled_counts.get(c, 0) != seed_counts[c] else ""
        class_lines.append(f"  - {{name: {_scalar(c) + ',':<{width + 1}} description: \"\"}}  "
                           f"# {seed_counts[c]:,} seeds{of}")
    seeds_why = ("drawn with --seeds (stratified, --seed " + str(options.seed) + ") and " if options.seeds else "")
    lines = [
        f"# Written by `lfagent init` from {options.labeled}. Edit freely; `lfagent run` reads it.",
        f"name: {_scalar(name)}",
        "description: \"\"  # one sentence on what is being labelled: every LLM prompt starts with it",
        "# Describe each class in a few words. Every LLM prompt lists these descriptions, so an LLM-written",
        "# LF is otherwise guessing from the class name alone; and only when every class has one can the",
        "# embedding expert vouch for records by meaning. Mined LFs work without them.",
        "classes:",
        *class_lines,
        f"multi_label: {'true' if multi_label else 'false'}"
        + ("  # labels split into lists; seeds.jsonl holds them as JSON lists" if multi_label else ""),
        f"text_field: {_scalar(options.text_column)}",
        f"label_field: {_scalar(options.label_column)}",
        f"id_field: {_scalar(id_field)}"
        + ("" if options.id_column else f"  # no id column: a seed's id is its line in {options.labeled.name}"),
        f"# The seeds are {seeds_why}copied, not referenced: labels are normalised (stripped; lists for",
        "# multi-label), and the task stays the same if the source file changes or moves.",
        "seeds: seeds.jsonl",
        f"unlabeled: {_scalar(unlabeled)}  # {unlabeled_note}",
    ]
    if test:
        lines.append(f"test: {test}  # labelled rows not drawn as seeds; only evaluation reads them")
    return "\n".join(lines) + "\n"


def init_task(options: InitOptions) -> InitResult:
    """Read, check, sample and write the task folder; returns what was written."""
    out = options.out
    task_path = out / "task.yaml"
    if task_path.exists() and not options.force:
        raise InputError("already exists; pass --force to replace it", path=task_path)
    if options.id_column is None and "id" in next((row for _, row in _rows(options.labeled)), {}):
        given_id, options = None, replace(options, id_column="id")  # the file's own ids: a seed can be found
    else:
        given_id = options.id_column
    rows, cells = read_labeled(options)
    multi, separator = detect_multi_label(cells, separator=options.separator, single_label=options.single_label)
    classes = assign_labels(rows, cells, multi, separator, options)
    unseeded = declared_classes(classes, options)
    classes += unseeded
    if options.seeds is not None and options.seeds < 2 * MIN_SEEDS_PER_CLASS:
        raise InputError(f"--seeds {options.seeds} is too few; give at least {MIN_SEEDS_PER_CLASS} per class")
    seeds, rest = stratified_sample(rows, options.seeds, options.seed) if options.seeds else (rows, [])
    check_seed_counts(seeds, classes, options, unseeded)
    paths = resolve_unlabeled(options.unlabeled)
    check_unlabeled_columns(paths, [options.text_column] + ([given_id] if given_id else []))

    out.mkdir(parents=True, exist_ok=True)
    id_field = options.id_column or "id"
    write_jsonl(out / "seeds.jsonl", [seed_record(r, options, multi, id_field) for r in seeds])
    notes: list[str] = [f"warning: no labelled row carries {c!r}: `lfagent run` labels it only from LFs that vote "
                        "it (an LLM's, from its description in task.yaml, or yours)" for c in unseeded]
    test = None
    if rest:
        kept = sorted(random.Random(options.seed + 1).sample(range(len(rest)), min(len(rest), options.test_rows)))
        write_jsonl(out / "test.jsonl", [seed_record(rest[i], options, multi, id_field) for i in kept])
        test = "test.jsonl"
        if len(kept) < len(rest):
            notes.append(f"test.jsonl holds {len(kept):,} of the {len(rest):,} labelled rows not drawn as seeds")
    sampled = None
    if len(paths) == 1:
        source, folder = paths[0].resolve(), out.resolve()
        # Relative when task and data share a project folder (they move together), else absolute.
        shared = os.path.commonpath([source, folder]) not in ("/", str(Path.home()))
        unlabeled = os.path.relpath(source, folder) if shared else str(source)
        note = "read whole by `lfagent run`; label more with `lfagent generate`"
    else:
        rows_out, seen = sample_unlabeled(paths, options.unlabeled_rows, options.seed)
        write_jsonl(out / "unlabeled.jsonl", rows_out)
        unlabeled, sampled = "unlabeled.jsonl", len(rows_out)
        note = (f"{len(rows_out):,} rows drawn from {seen:,} in {len(paths)} files; "
                f"`lfagent generate RUN --input '{options.unlabeled[0]}'` labels them all")
    seed_counts = {c: class_counts(seeds)[c] for c in classes}
    text = render_task_yaml(name=options.name or out.resolve().name or "task", options=options, classes=classes,
                            seed_counts=seed_counts, labeled_counts=dict(class_counts(rows)), multi_label=multi,
                            id_field=id_field, unlabeled=unlabeled, unlabeled_note=note, test=test)
    tmp = task_path.with_name("task.yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, task_path)
    return InitResult(task_path=task_path, classes=classes, counts=seed_counts, multi_label=multi,
                      separator=separator, n_labeled=len(rows), n_seeds=len(seeds), n_test=0 if not test else
                      min(len(rest), options.test_rows), unlabeled=unlabeled, n_unlabeled_sampled=sampled,
                      notes=notes)
