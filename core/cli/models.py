"""``list``, ``show``, ``alias``, ``tag``, ``note``, ``delete``: reading and labelling the versions in a store."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.base import Output, ref_arg, store_of
from core.environment import compare_environment
from core.errors import InvalidParameterError
from core.record import MetricsRecord, VersionRecord, cv_text, metrics_of, ref_of, score_text
from core.refs import parse_ref
from core.store.index import SORTS
from core.text import human_bytes, params_text, split_words, utc_minutes

#: Rows ``list`` prints unless told otherwise: the dashboard's page size.
PAGE = 50
#: Metrics ``list --sort`` takes besides its SQL sorts: every number a record's metrics may hold.
METRIC_SORTS = tuple(
    sorted(k for k in MetricsRecord.__optional_keys__ if k not in ("average", "confusion_matrix", "primary"))
)
#: Metrics where less is better: a list sorted by one shows the smallest first.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "max_error", "fit_seconds"})
TASK_NAMES = ("classification", "regression", "clustering", "transformer")


def list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="only names containing this text")
    p.add_argument("--tag", help="only versions with a tag containing this text (any case)")
    p.add_argument("--task", choices=TASK_NAMES, help="only versions of this task")
    p.add_argument(
        "--sort", choices=(*SORTS, *METRIC_SORTS), default="created", help="score: the primary score; or a metric"
    )
    pages = p.add_mutually_exclusive_group()
    pages.add_argument("--limit", type=int, default=PAGE, help=f"at most this many rows (default {PAGE})")
    pages.add_argument("--all", action="store_true", help="every version, however many")


def _by_metric(records: list[VersionRecord], key: str, limit: int | None) -> list[VersionRecord]:
    """Best first by one recorded metric (versions without it last): sorted here, not in SQL."""
    sign = 1.0 if key in LOWER_IS_BETTER else -1.0
    values: list[Any] = [dict(metrics_of(r)).get(key) for r in records]
    known = [(sign * float(v), i) for i, v in enumerate(values) if isinstance(v, (int, float)) and v == v]
    ordered = [records[i] for _, i in sorted(known)]
    ordered += [r for i, r in enumerate(records) if i not in {j for _, j in known}]
    return ordered if limit is None else ordered[:limit]


def list_command(args: argparse.Namespace) -> Output:
    store = store_of(args)
    if args.limit is not None and args.limit < 1:
        raise InvalidParameterError(f"Invalid value {args.limit} for --limit: give 1 or more, or --all")
    limit = None if args.all else args.limit
    filters = {"name": args.name, "tag": args.tag, "task": args.task}
    if args.sort in SORTS:
        records = store.list(**filters, sort=args.sort, limit=limit)
    else:
        records = _by_metric(store.list(**filters), args.sort, limit)
    if not records:
        return f"No models in {store.location}" + (" match" if any(filters.values()) else ""), records
    header = ("MODEL", "ALIASES", "ESTIMATOR", "TASK", "SCORE", "FORMAT", "SIZE", "SKLEARN", "CREATED")
    rows = [
        (
            ref_of(r),
            " ".join("@" + a for a in r["aliases"]) or "-",
            (r.get("estimator") or "-").rsplit(".", 1)[-1],
            r.get("task") or ("classification" if metrics_of(r).get("accuracy") is not None else "-"),
            score_text(r),
            r["format"],
            human_bytes(r["size_bytes"]),
            r["environment"]["packages"].get("scikit-learn", "-"),
            utc_minutes(r["created_at"]),
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    text = "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    )
    if limit is not None and len(records) == limit:
        total = store.count(**filters)
        if total > limit:
            text += f"\n(the first {limit:,} of {total:,} versions: --limit N or --all for more)"
    if store.snapshot:
        text += f"\n(a read-only snapshot of {store.location}: writes made by others meanwhile are not shown)"
    return text, records


def show_command(args: argparse.Namespace) -> Output:
    # Deferred: an old record's task may need scikit-learn's classes; list stays light without it.
    from core.tasks import PRIMARY_METRIC, task_of_record

    record = store_of(args).get(args.ref)
    compatibility = compare_environment(record.get("environment"))
    metrics = record.get("metrics") or {}
    lines = [
        ref_of(record) + (" " + " ".join("@" + a for a in record["aliases"]) if record["aliases"] else ""),
        f"  created      {utc_minutes(record['created_at'])}",
        f"  estimator    {record.get('estimator')}",
        f"  file         {record['format']}, {human_bytes(record['size_bytes'])}, sha256 {record['sha256']}",
        f"  uri          {record['uri']}",
        f"  task         {task_of_record(record) or 'unknown'}"
        + ("" if task_of_record(record) in PRIMARY_METRIC else ": stored and listed, not scored"),
        f"  score        {score_text(record)}",
    ]
    if task_of_record(record) in ("classification", None):
        lines.append(f"  accuracy     {metrics.get('accuracy')!r}")
    claimed = (record.get("claimed_metrics") or {}).get("accuracy")
    if claimed is not None and metrics.get("accuracy") is None:
        lines.append(f"  claimed      accuracy {claimed!r}: claimed by the bundle's sender, not measured here")
    for key in ("precision", "recall", "f1", "roc_auc", "mae", "rmse", "mape", "max_error"):
        if metrics.get(key) is not None:
            lines.append(f"  {key:<12} {metrics[key]:.4f}")
    if cv := record.get("cv"):
        lines.append(f"  cv           {cv_text(cv)}: " + ", ".join(f"{v:.4f}" for v in cv["scores"]))
    if s := record.get("split"):
        lines.append(f"  split        {split_words(s)}")
    if d := record.get("dataset"):
        lines.append(f"  data         {d.get('source')} ({d.get('n_rows')} rows, {d.get('n_features')} features)")
        if d.get("fingerprint"):
            lines.append(f"  fingerprint  {d['fingerprint']}")
    lines.append("  params       " + params_text(record.get("params")))
    lines.append(f"  environment  {compatibility.status}: {compatibility.summary()}")
    lines += [f"  warning      {w}" for w in record.get("warnings") or []]
    if record.get("tags"):
        lines.append("  tags         " + ", ".join(record["tags"]))
    if record.get("note"):
        lines.append(f"  note         {record['note']}")
    return "\n".join(lines), record | {"compatibility": compatibility.to_dict()}


def alias_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    p.add_argument("alias")
    p.add_argument("--remove", action="store_true", help="remove the alias instead")


def alias_command(args: argparse.Namespace) -> Output:
    store = store_of(args)
    if args.remove:
        name = parse_ref(args.ref).name
        removed = store.remove_alias(name, args.alias)
        return (f"Removed {name}@{args.alias}" if removed else f"{name} has no alias @{args.alias}"), {
            "removed": removed
        }
    record = store.set_alias(args.ref, args.alias)
    return f"{record['name']}@{args.alias} -> {ref_of(record)}", record


def tag_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    p.add_argument("tag")
    p.add_argument("--remove", action="store_true", help="remove the tag instead")


def tag_command(args: argparse.Namespace) -> Output:
    store = store_of(args)
    if args.remove:
        removed = store.remove_tag(args.ref, args.tag)
        return (f"Removed tag {args.tag}" if removed else f"No tag {args.tag} to remove"), {"removed": removed}
    record = store.add_tag(args.ref, args.tag)
    return f"{ref_of(record)} tags: {', '.join(record['tags'])}", record


def note_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    p.add_argument("text")


def note_command(args: argparse.Namespace) -> Output:
    record = store_of(args).set_note(args.ref, args.text)
    return f"{ref_of(record)} note saved", record


def delete_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    p.add_argument("--force", action="store_true", help="delete even if aliased (drops the aliases)")


def delete_command(args: argparse.Namespace) -> Output:
    store = store_of(args)
    row = store.row(args.ref)
    freed = store.delete(args.ref, force=args.force)
    ref = f"{row.name}:{row.version}"
    return f"Deleted {ref}, freed {human_bytes(freed)}", {"deleted": ref, "freed_bytes": freed}
