"""Fuzz the in-process loader (``core.safety.loader._load_untrusted``) with mutated bytes of real model files.

Every mutated file must end as either a loaded model or a ModelShelfError: never another
exception, never a crash of the process, never the marker file that a payload would create.
A loaded model is then asked to predict (any Python exception there is fine; a crash is not).

    python tests/fuzz_safe_load.py --iterations 20000 --seed 1      # a longer run
    python tests/fuzz_safe_load.py --iterations 300 --json          # what tests/test_fuzz.py runs

Exit code 0 when every outcome was allowed; 1 otherwise (the first bad case is printed, and
saved under --save-failures if given, to replay it).
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import random
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_files(marker: Path) -> dict[str, bytes]:
    """Real model files in every format, plus one with a payload hidden inside."""
    import joblib
    import numpy as np
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True, as_frame=True)
    mixed = X.assign(size=np.where(X["petal length (cm)"] > 4, "large", "small"))
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), list(X.columns)), ("cat", OneHotEncoder(), ["size"])],
                ),
            ),
            ("model", LogisticRegression(max_iter=300)),
        ]
    ).fit(mixed, y)
    models = {
        "logreg": LogisticRegression(max_iter=300).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(X, y),
        "gb": GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y),
        "hgb": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y),
        "knn": KNeighborsClassifier().fit(X.to_numpy(), y),
        "svc": SVC().fit(X.to_numpy(), y),
        "pipeline": pipeline,
    }
    files: dict[str, bytes] = {}
    for name, model in models.items():
        files[f"{name}.pkl"] = pickle.dumps(model, protocol=5)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        files[f"{name}.joblib"] = buffer.getvalue()
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=3)
        files[f"{name}.z.joblib"] = buffer.getvalue()
    for name in ("logreg", "forest", "pipeline"):
        files[f"{name}.p0.pkl"] = pickle.dumps(models[name], protocol=0)
        files[f"{name}.skops"] = skops.io.dumps(models[name])
    files["hidden-payload.pkl"] = pickle.dumps(_with_payload(models["logreg"], marker), protocol=4)
    return files


class _Payload:
    """Unpickling this with plain pickle would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _with_payload(model, marker: Path):
    import copy

    hidden = copy.deepcopy(model)
    hidden.notes_ = {"owner": "x", "run": _Payload(marker)}
    return hidden


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, byte overwrites, truncation, splices, duplicated runs."""
    buf = bytearray(data)
    kind = rng.choice(("flip", "bytes", "truncate", "splice", "duplicate", "flip"))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)) :]
    elif kind == "splice":
        i, j = sorted(rng.randrange(len(buf)) for _ in range(2))
        k = rng.randrange(len(buf))
        buf[k:k] = buf[i:j][:4096]
    else:
        i = rng.randrange(len(buf))
        buf[i:i] = buf[i : i + rng.randint(1, 64)]
    return bytes(buf)


def run(iterations: int, seed: int, save_failures: Path | None) -> dict:
    from sklearn.datasets import load_iris

    from core.errors import ModelShelfError
    from core.safety import LoadLimits
    from core.safety.loader import _load_untrusted as load_untrusted

    workdir = Path(tempfile.mkdtemp(prefix="modelshelf-fuzz-"))
    marker = workdir / "marker"
    files = seed_files(marker)
    X, _ = load_iris(return_X_y=True, as_frame=True)
    limits = LoadLimits(max_bytes=50_000_000, max_decompressed_bytes=50_000_000, timeout_s=10.0)
    rng = random.Random(seed)
    names = sorted(files)
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    bad: list[dict] = []
    started = time.perf_counter()
    for i in range(iterations):
        name = names[i % len(names)]
        data = mutate(files[name], rng)
        try:
            loaded = load_untrusted(data, limits=limits)
        except ModelShelfError as exc:
            outcomes["refused"] += 1
            errors[type(exc).__name__] += 1
        except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            outcomes["other-exception"] += 1
            bad.append({"iteration": i, "seed_file": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            if save_failures:
                save_failures.mkdir(parents=True, exist_ok=True)
                (save_failures / f"case-{seed}-{i}-{name}").write_bytes(data)
        else:
            outcomes["loaded"] += 1
            frame = X.assign(size="large") if "pipeline" in name else X
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    features = frame if hasattr(loaded.model, "feature_names_in_") else frame.to_numpy()
                    loaded.model.predict(features)
                    outcomes["predicted"] += 1
                except Exception:  # noqa: BLE001 - a damaged model may fail to predict; it must not crash
                    outcomes["predict-error"] += 1
        if marker.exists():
            bad.append({"iteration": i, "seed_file": name, "error": "the payload ran: marker file created"})
            break
    return {
        "iterations": iterations,
        "seed": seed,
        "seed_files": len(files),
        "outcomes": dict(outcomes),
        "errors": dict(errors),
        "bad": bad[:20],
        "seconds": round(time.perf_counter() - started, 2),
        "marker_created": marker.exists(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--save-failures", type=Path, help="folder to save failing inputs in")
    args = parser.parse_args(argv)
    summary = run(args.iterations, args.seed, args.save_failures)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{summary['iterations']} mutations of {summary['seed_files']} files (seed {summary['seed']}) in "
            f"{summary['seconds']} s: {summary['outcomes']}; refusals {summary['errors']}"
        )
        for case in summary["bad"]:
            print(f"BAD  iteration {case['iteration']} ({case['seed_file']}): {case['error']}")
    return 1 if summary["bad"] or summary["marker_created"] else 0


if __name__ == "__main__":
    sys.exit(main())
