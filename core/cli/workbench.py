"""``compare-estimators``: several catalog estimators on one split, a leaderboard, and optionally save one."""

from __future__ import annotations

import argparse
from typing import Any

from core.catalog_tasks import ALL_KEYS, spec_for
from core.cli.base import Output, data_args, store_of
from core.datasets import load_dataset
from core.errors import InvalidParameterError
from core.formats import FORMATS
from core.metrics import TASK_METRICS
from core.record import ref_of
from core.refs import check_name
from core.tasks import TRAINABLE, choose_task
from core.text import human_bytes
from core.workbench import Leaderboard, compare_estimators, parse_keys


def compare_args(p: argparse.ArgumentParser) -> None:
    data_args(p, required=True)
    p.add_argument(
        "--task", choices=("auto", *TRAINABLE), default="auto", help="what to learn (default: inferred from the target)"
    )
    p.add_argument(
        "--estimators", help="comma-separated catalog keys (default: every key of the task): " + ", ".join(ALL_KEYS)
    )
    p.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation on the training part too")
    p.add_argument("--test-size", type=float, default=0.33, help="held-out fraction (default 0.33)")
    p.add_argument("--seed", type=int, default=7, help="random_state of the split and the estimators (default 7)")
    p.add_argument("--stratify", action="store_true", help="keep class proportions in the split")
    p.add_argument("--scale", action="store_true", help="standardise numeric features")
    p.add_argument("--save", metavar="KEY", help="save this estimator of the comparison (with --name)")
    p.add_argument("--name", help="model name for --save")
    p.add_argument("--format", choices=FORMATS, help="model file format of --save (default: the store's, a pickle)")
    p.add_argument("--tag", action="append", help="tag of the saved version (repeatable)")
    p.add_argument("--note", help="free text kept with the saved version")


def leaderboard_text(board: Leaderboard, source: str) -> list[str]:
    """The ranked table: primary score first, the task's other metrics, CV, fit time, size, warnings."""
    others = [m for m in TASK_METRICS[board.task] if m != board.primary]
    cv_head = f"cv{board.cv} mean±std" if board.cv else ""
    lines = [
        f"{len(board.entries)} {board.task} estimators on {source} ({board.task_reason}): trained on {board.n_train} "
        f"rows, scored on the same {board.n_test} held-out rows; ranked by {board.primary}",
        f"{'#':>2} {'key':<24} {board.primary:>9} "
        + " ".join(f"{m:>9.9}" for m in others)
        + (f" {cv_head:>16}" if cv_head else "")
        + f" {'fit s':>8} {'size':>9}  warnings",
    ]
    for rank, entry in enumerate(board.entries, 1):
        if entry.result is None:
            lines.append(f"{rank:>2} {entry.key:<24} failed: {entry.error}")
            continue
        m = entry.result.metrics
        cells = [_cell(entry.score)] + [_cell(m.get(name)) for name in others]
        cv = entry.result.cv
        cv_cell = f" {cv['mean']:>7.4f}±{cv['std']:.4f}" if cv else ""
        lines.append(
            f"{rank:>2} {entry.key:<24} "
            + " ".join(cells)
            + (f" {cv_cell:>16}" if board.cv else "")
            + f" {entry.result.fit_seconds:>8.3f} {human_bytes(entry.size_bytes):>9}  {len(entry.result.warnings)}"
        )
    return lines


def _cell(value: Any) -> str:
    return f"{'-':>9}" if value is None else f"{value:>9.4f}"


def compare_command(args: argparse.Namespace) -> Output:
    if (args.save is None) != (args.name is None):
        raise InvalidParameterError("--save KEY and --name NAME go together: which estimator to save, and its name")
    if args.name is not None:
        check_name(args.name)
    dataset = load_dataset(args.data, names=args.names, target=args.target, header=args.header)
    keys = parse_keys(args.estimators)
    if args.save is not None:  # refused before the first fit, not after the last
        if keys is not None and args.save not in keys:
            raise InvalidParameterError(f"--save {args.save} is not among --estimators: " + ", ".join(keys))
        spec_for(args.save, choose_task(dataset.y, args.task)[0])
    board = compare_estimators(
        dataset,
        keys,
        task=args.task,
        cv=args.cv,
        test_size=args.test_size,
        seed=args.seed,
        stratify=args.stratify,
        scale=args.scale,
    )
    lines = leaderboard_text(board, dataset.source)
    rows = board.to_dict()
    for row in rows:
        row["saved"] = None
    if args.save is not None:
        entry = board.entry(args.save)
        if entry.result is None:
            raise InvalidParameterError(f"{args.save} could not be fitted, so nothing was saved: {entry.error}")
        record = store_of(args).save_trained(
            entry.result, args.name, format=args.format, tags=args.tag or [], note=args.note or ""
        )
        rows[board.keys.index(args.save)]["saved"] = ref_of(record)
        lines.append(
            f"Saved {args.save} as {ref_of(record)} ({record['format']}, {human_bytes(record['size_bytes'])}): "
            f"held-out {board.primary} {entry.score!r} ({board.n_test} rows)"
        )
    return "\n".join(lines), rows
