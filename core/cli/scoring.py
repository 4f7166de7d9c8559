"""``evaluate``, ``predict``: use a stored version on data (re-score it, or predict rows with it)."""

from __future__ import annotations

import argparse
import json

from core.cli.base import Output, data_args, ref_arg, store_of
from core.datasets import load_frame, parse_names, to_jsonable
from core.frames import predict_table
from core.record import ref_of


def evaluate_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    data_args(p, required=False)


def evaluate_command(args: argparse.Namespace) -> Output:
    evaluation = store_of(args).evaluate(
        args.ref, data=args.data, names=args.names, target=args.target, header=args.header
    )
    result = evaluation.to_dict()
    verdict = {True: "yes", False: "NO", None: "nothing recorded"}[evaluation.reproduced]
    lines = [
        f"{evaluation.name}:{evaluation.version} re-scored on {evaluation.data} "
        f"({evaluation.metrics['n_samples']} rows)",
        f"  {evaluation.primary or 'score':<12} {evaluation.score!r}",
        f"  recorded     {evaluation.recorded_score!r}",
        f"  reproduced   {verdict}",
    ]
    lines += [
        f"  difference   {metric} {'undefined on one side' if delta is None else f'{delta:+.6g}'}"
        for metric, delta in (evaluation.differences or {}).items()
    ]
    lines += [
        f"  environment  {evaluation.compatibility.status}: {evaluation.compatibility.summary()}",
    ]
    if evaluation.fingerprint_match is False:
        lines.append("  note         the data differs from the data set the model was trained on")
    lines += [f"  warning      {w}" for w in evaluation.warnings]
    return "\n".join(lines), result


def predict_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    data_args(p, required=True, target=False)
    p.add_argument("-o", "--output", help="output CSV (default: stdout)")
    p.add_argument("--engine", choices=("sklearn", "onnx"), default="sklearn", help="onnx: run the ONNX export")


def predict_command(args: argparse.Namespace) -> Output:
    store = store_of(args)
    frame = load_frame(args.data, parse_names(args.names), header=args.header)
    if args.engine == "onnx":
        from core.portable.exports import predict_with_onnx  # deferred: ONNX, only for --engine onnx

        record = store.get(args.ref)
        ref = ref_of(record)
        table = predict_with_onnx(store, ref, frame)
    else:
        loaded = store.load(args.ref)
        ref, record = loaded.ref, loaded.record
        table = predict_table(loaded.model, frame, loaded.record)
    if args.output in (None, "-"):
        if args.json:
            return "", json.loads(table.to_json(orient="records"))
        return table.to_csv(index=False).rstrip("\n"), None
    table.to_csv(args.output, index=False)
    values = table["prediction"]
    if record.get("task") == "regression":  # numbers: their range, not a count of each
        counts = {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}
    else:
        counts = {str(to_jsonable(k)): int(v) for k, v in values.value_counts().items()}
    summary = {"ref": ref, "engine": args.engine, "rows": len(table), "output": args.output, "predictions": counts}
    return f"Wrote {len(table)} predictions of {ref} to {args.output} ({counts})", summary
