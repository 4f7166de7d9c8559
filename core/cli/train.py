"""``train``, ``estimators``, ``datasets``: fit a catalog estimator on a data set and save it; what there is to fit."""

from __future__ import annotations

import argparse

from core.catalog import parse_param_args
from core.catalog_tasks import ALL_KEYS, catalog_for, spec_for, tasks_of
from core.cli.base import Output, data_args, duplicate_args, duplicate_line, store_of
from core.formats import FORMATS
from core.record import cv_text, ref_of, score_text
from core.shipped import BUILTIN_DATASETS, BUILTIN_PREFIX
from core.tasks import TRAINABLE
from core.text import human_bytes


def train_args(p: argparse.ArgumentParser) -> None:
    data_args(p, required=True)
    p.add_argument("--estimator", required=True, help="catalog key: " + ", ".join(ALL_KEYS))
    p.add_argument(
        "--task", choices=("auto", *TRAINABLE), default="auto", help="what to learn (default: inferred from the target)"
    )
    p.add_argument("--param", action="append", metavar="K=V", help="hyperparameter (repeatable)")
    p.add_argument("--test-size", type=float, default=0.33, help="held-out fraction (default 0.33)")
    p.add_argument("--seed", type=int, default=7, help="random_state of the split and the estimator (default 7)")
    p.add_argument("--stratify", action="store_true", help="keep class proportions in the split")
    p.add_argument("--scale", action="store_true", help="standardise numeric features")
    p.add_argument(
        "--cv", type=int, metavar="K", help="k-fold cross-validation on the training part (stratified for classes)"
    )
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--format", choices=FORMATS, help="model file format (default: pickle, or joblib with --compress)")
    p.add_argument("--compress", type=int, default=0, help="joblib compression level 0-9")
    p.add_argument("--tag", action="append", help="tag (repeatable)")
    p.add_argument("--note", help="free text kept with the version")
    duplicate_args(p)


def train_command(args: argparse.Namespace) -> Output:
    # pandas and scikit-learn load here, not with the module: ``estimators`` and ``datasets`` need neither
    from core.datasets import load_dataset
    from core.training import train

    dataset = load_dataset(args.data, names=args.names, target=args.target, header=args.header)
    result = train(
        dataset,
        args.estimator,
        parse_param_args(args.param),
        test_size=args.test_size,
        seed=args.seed,
        stratify=args.stratify,
        scale=args.scale,
        task=args.task,
        cv=args.cv,
    )
    record = store_of(args).save_trained(
        result,
        args.name,
        format=args.format,
        compress=args.compress,
        tags=args.tag or [],
        note=args.note or "",
        on_duplicate=args.on_duplicate,
    )
    same = duplicate_line(record)
    if record.get("stored") is False and same:
        return same, record
    primary = result.metrics["primary"]
    lines = [
        f"Saved {ref_of(record)} ({record['format']}, {human_bytes(record['size_bytes'])}) to {record['uri']}",
        f"  task {result.task} ({result.task_reason}; --task overrides)",
        f"  {spec_for(args.estimator, result.task).label} on {dataset.source}: held-out "
        f"{primary} {result.metrics[primary]!r} ({result.split.n_test} rows), fit in {result.fit_seconds:.3f}s",
        f"  score        {score_text(record)}",
    ]
    if result.cv:
        lines.append(f"  cv           {cv_text(result.cv)}: " + ", ".join(f"{s:.4f}" for s in result.cv["scores"]))
    lines += [f"  warning: {w}" for w in result.warnings]
    lines += [same] if same else []
    return "\n".join(lines), record


def estimators_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", nargs="?", help="one catalog key")
    p.add_argument("--task", choices=TRAINABLE, help="only the estimators of this task")


def estimators_command(args: argparse.Namespace) -> Output:
    tasks = [args.task] if args.task else list(TRAINABLE)
    if args.key and not tasks_of(args.key):
        spec_for(args.key)  # an unknown key: one line listing the keys there are
    specs = [(task, spec) for task in tasks for spec in catalog_for(task).values() if args.key in (None, spec.key)]
    if not specs:  # a key of the other task only: one line naming this task's keys
        spec_for(args.key, tasks[0])
    lines = []
    for task, spec in specs:
        lines.append(f"{spec.key:<24} {spec.label} ({task}): {spec.description}")
        lines += [f"    {p.name:<20} default {p.default!r:<10} {p.describe()}" for p in spec.params]
    payload = [
        {"key": s.key, "task": t, "label": s.label, "class": s.class_path, "params": [p.to_dict() for p in s.params]}
        for t, s in specs
    ]
    return "\n".join(lines), payload


def datasets_command(args: argparse.Namespace) -> Output:
    names = [BUILTIN_PREFIX + n for n in BUILTIN_DATASETS]
    return "\n".join(names) + "\n(or a CSV path or URL; --names or --no-header when it has no header row)", names
