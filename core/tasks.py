"""What a model does: classification, regression, clustering or transformer, and how ModelShelf tells.

Training infers the task from the target's values (and says why); a stored model's task comes
from its record, or, for records made before tasks were recorded, from its estimator class.
scikit-learn's ``type_of_target`` is not used: it calls integral floats (``1.0, 2.0``) multiclass
whatever their number, which would make a 200-valued count a 200-class problem.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from core.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

Task = Literal["classification", "regression", "clustering", "transformer"]
TASKS: tuple[Task, ...] = ("classification", "regression", "clustering", "transformer")
#: The tasks a model can be trained (and scored) for.
TRAINABLE: tuple[Task, ...] = ("classification", "regression")
#: An integer target with at most this many distinct values is read as classes.
MAX_INTEGER_CLASSES = 20
#: The score each scored task leads with (``metrics.primary``).
PRIMARY_METRIC: dict[str, str] = {"classification": "accuracy", "regression": "r2"}


def infer_task(y: pd.Series) -> tuple[Task, str]:
    """The task a target asks for, and why, in words a person can check."""
    import numpy as np  # deferred, like scikit-learn below: `show` reads a recorded task without them
    import pandas as pd
    from pandas.api import types as ptypes

    values = y.dropna()
    if ptypes.is_bool_dtype(values) or not ptypes.is_numeric_dtype(values):
        return "classification", "the target is not numeric"
    numbers = values.to_numpy(dtype=float)
    if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
        return "regression", "the target has non-integral values"
    distinct = int(pd.unique(numbers).size)
    if distinct <= MAX_INTEGER_CLASSES:
        return "classification", f"the target has {distinct} distinct integer values (<= {MAX_INTEGER_CLASSES})"
    return "regression", f"the target has {distinct} distinct integer values (> {MAX_INTEGER_CLASSES})"


def check_classifier_target(y: pd.Series, classes: Any, source: str) -> None:
    """Refuse to score a classifier on a regression target: values it has no class for, judged as ``infer_task`` does.

    A many-valued integer target whose values are all among ``classes`` is a classification with
    many classes, and passes; so does anything when the classes are unknown (``None``).
    """
    if classes is None:
        return
    import numpy as np  # deferred: see infer_task
    import pandas as pd

    task, why = infer_task(y)
    if task != "regression":
        return
    values = pd.unique(y.dropna())
    known = np.asarray(classes)
    classes_here = set(known.tolist())  # one hashed lookup a value: np.isin per value cost a pass over the classes
    unknown = sum(1 for v in values.tolist() if v not in classes_here)
    if not unknown:
        return
    shown = ", ".join(str(c) for c in known[:5]) + (", ..." if len(known) > 5 else "")
    raise DatasetError(
        f"The target {y.name!r} of {source} looks like a regression target ({why}), but the model is a "
        f"classifier (classes {shown}) with no class for {unknown} of its {len(values)} values: "
        "score it on the column of classes it predicts"
    )


def choose_task(y: pd.Series, requested: str | None) -> tuple[Task, str, list[str]]:
    """The task to train for (``requested``, else inferred), why, and warnings about the choice.

    Classes of a many-valued integer target are allowed with a warning; a classifier on
    non-integral values is refused (its "classes" would be every distinct number).
    """
    inferred, why = infer_task(y)
    if requested in (None, "", "auto"):
        return inferred, f"inferred: {why}", []
    if requested not in TRAINABLE:
        raise DatasetError(f"Unknown task {requested!r}; choose one of: auto, " + ", ".join(TRAINABLE))
    task: Task = "classification" if requested == "classification" else "regression"
    notes: list[str] = []
    if task == "classification" and inferred == "regression":
        if why.endswith("non-integral values"):
            raise DatasetError(
                f"The target {y.name!r} has non-integral values, so a classifier cannot learn it; "
                "use --task regression (or a regression estimator)"
            )
        notes.append(f"classification of a target with many classes: {why}")
    return task, f"chosen ({why})", notes


def _task_of_class(cls: type) -> Task | None:
    from sklearn.base import ClassifierMixin, ClusterMixin, RegressorMixin, TransformerMixin  # deferred: see infer_task

    for mixin, task in (
        (ClassifierMixin, "classification"),
        (RegressorMixin, "regression"),
        (ClusterMixin, "clustering"),
        (TransformerMixin, "transformer"),
    ):
        if issubclass(cls, mixin):
            return task  # type: ignore[return-value]
    return None


def task_of_estimator(estimator: Any) -> Task | None:
    """The task of a (fitted or not) estimator or pipeline, by scikit-learn's own type checks."""
    from sklearn.base import is_classifier, is_regressor  # deferred: see infer_task

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") and estimator.steps else estimator
    try:
        if is_classifier(final):
            return "classification"
        if is_regressor(final):
            return "regression"
    except (AttributeError, TypeError):  # an object without scikit-learn's tags: judge by its class
        pass
    return _task_of_class(type(final))


def task_of_class_path(path: str | None) -> Task | None:
    """The task of a recorded estimator class (``sklearn.linear_model.Ridge``); only scikit-learn's own.

    Judged by the class's mixins: building an instance just to ask would run a stranger's ``__init__``.
    """
    if not path or not path.startswith("sklearn."):
        return None
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None
    return _task_of_class(cls) if isinstance(cls, type) else None


def task_of_record(record: Mapping[str, Any]) -> Task | None:
    """A version's task: recorded, else classification when it has an accuracy, else from its class."""
    recorded = record.get("task")
    if recorded in TASKS:
        return recorded
    if (record.get("metrics") or {}).get("accuracy") is not None:
        return "classification"
    return task_of_class_path(record.get("estimator"))
