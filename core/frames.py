"""Feature tables: alignment to what a model was fitted on, model input, predictions, and the
evaluation set a version keeps (one Parquet table: the features plus ``__target__``).

A leaf of the store: the store, the ONNX and JSON converters, the importer and the pages all shape
rows the same way without depending on the store.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import DatasetError, InvalidParameterError
from core.record import recorded_features

TARGET_COLUMN = "__target__"


def as_frame(X: Any, feature_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Features as a DataFrame with string column names (``x0, x1, ...`` for bare arrays)."""
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True)
    array = np.asarray(X)
    if array.ndim != 2:
        raise DatasetError(f"Features must be a 2-D table, got an array of shape {array.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=names)


def model_input(model: Any, X: pd.DataFrame) -> Any:
    """A frame for models fitted on named columns, the bare array for models fitted on arrays."""
    return X if hasattr(model, "feature_names_in_") else X.to_numpy()


def write_evaluation_set(frame: pd.DataFrame, handle: IO[bytes]) -> None:
    """Parquet, built in memory and written in one piece (pyarrow would write a Python file in
    many small pieces). Dictionary encoding only for text columns: numbers seldom repeat, and
    trying costs most of the write; one conversion thread, which is faster for a few columns."""
    text = [str(c) for c, dtype in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_dictionary=text or False)
    handle.write(sink.getvalue())


def _n_rows(data: Any) -> int:
    shape = getattr(data, "shape", None)
    return int(shape[0]) if shape else len(data)


def check_evaluation_rows(X_test: Any, y_test: Any) -> None:
    """Both held-out parts or neither, with as many rows each (a save checks before it writes)."""
    if (X_test is None) != (y_test is None):
        raise InvalidParameterError("Give both X_test and y_test, or neither")
    if X_test is not None and _n_rows(X_test) != _n_rows(y_test):
        raise InvalidParameterError(f"X_test has {_n_rows(X_test)} rows but y_test has {_n_rows(y_test)}")


def evaluation_frame(model: Any, X_test: Any, y_test: Any) -> pd.DataFrame | None:
    """The held-out rows as one table (features + ``__target__``), as a version keeps them."""
    check_evaluation_rows(X_test, y_test)
    if X_test is None:
        return None
    names = getattr(model, "feature_names_in_", None)
    frame = as_frame(X_test, names if names is not None and not isinstance(X_test, pd.DataFrame) else None)
    target = np.asarray(y_test)
    check_evaluation_rows(frame, target)  # as the frame has them
    if TARGET_COLUMN in frame.columns:
        raise InvalidParameterError(f"A feature may not be called {TARGET_COLUMN!r}")
    frame[TARGET_COLUMN] = target
    return frame


def split_evaluation_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    y = frame[TARGET_COLUMN].rename("target")
    return frame.drop(columns=[TARGET_COLUMN]), y


def read_evaluation_set(data: bytes) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target of a kept evaluation set, from its (already verified) Parquet bytes."""
    return split_evaluation_frame(pd.read_parquet(io.BytesIO(data)))


def select_columns(X: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """``wanted`` columns of ``X``, in that order; one clear error naming any that are missing."""
    missing = [c for c in wanted if c not in X.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DatasetError(f"The data lacks {len(missing)} feature column(s) the model needs: {shown}")
    return X if list(X.columns) == wanted else X[wanted]


def align_features(X: pd.DataFrame, record: Mapping[str, Any]) -> pd.DataFrame:
    """The recorded feature columns, in order (the data as it is when none were recorded)."""
    wanted = recorded_features(record)
    return select_columns(as_frame(X), list(wanted)) if wanted else X


def predict_table(model: Any, data: pd.DataFrame, record: Mapping[str, Any]) -> pd.DataFrame:
    """The input rows with ``prediction`` and ``proba_<class>`` columns appended."""
    X = align_features(as_frame(data), record)
    if X.empty:
        raise DatasetError("There are no rows to predict")
    features = model_input(model, X)
    try:
        predicted = model.predict(features)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"Could not predict on these rows: {exc}") from exc
    out = as_frame(data).copy()
    out["prediction"] = predicted
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(features)
        except (AttributeError, ValueError):
            proba = None
        if proba is not None:
            out = with_probabilities(out, proba, getattr(model, "classes_", range(proba.shape[1])))
    return out


def with_probabilities(out: pd.DataFrame, proba: Any, labels: Iterable[Any]) -> pd.DataFrame:
    """``out`` with one ``proba_<label>`` column per class, added at once: inserted one by one, each
    column cost more than the last (one row of a 6,000-class model took 40 s)."""
    columns = pd.DataFrame(np.asarray(proba, dtype=np.float64), columns=[f"proba_{label}" for label in labels])
    return pd.concat([out.reset_index(drop=True), columns], axis=1)


#: The column types of an evaluation set: flat numbers, booleans, nothing, and text.
_FLAT = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
_TEXT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def parquet_decoded_bytes(blob: bytes, limit: int | None = None) -> int:
    """About what a Parquet file decodes to, read from its footer and its text dictionaries only.

    Every column's uncompressed size, and at least rows x columns x 8 bytes (the footer is the
    sender's word, but pyarrow refuses pages that decode to other sizes than it states). The
    footer counts a dictionary page once, however many rows repeat its values: one value of 5,000
    characters on 100,000 rows is a few kB stored and 500 MB decoded. So text columns are read
    with their dictionaries kept (the values once, the indices per row) and each value's length
    is taken by its indices. Past ``limit`` already from the footer, the dictionaries are not read.
    A column of any other type (a list, a struct, fixed-size binary) is a ValueError: its rows do
    not bound its values, and an evaluation set never holds one.
    """
    parquet = pq.ParquetFile(io.BytesIO(blob))
    meta, schema = parquet.metadata, parquet.schema_arrow
    for column in schema:  # a list or a struct holds any number of values a row: no bound from the rows
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not any(is_type(kind) for is_type in (*_FLAT, *_TEXT)):
            raise ValueError(f"its column {column.name!r} holds {column.type}, not numbers, booleans or text")
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    stored = sum(g.column(c).total_uncompressed_size for g in groups for c in range(g.num_columns))
    decoded = max(stored, meta.num_rows * max(meta.num_columns, 1) * 8)
    if limit is not None and decoded > limit:
        return decoded
    import pyarrow.compute as pc  # deferred: only a file with text columns is measured this way

    text = [f.name for f in schema if any(is_type(f.type) for is_type in _TEXT)]
    if not text:
        return decoded
    table = pq.read_table(io.BytesIO(blob), columns=text, read_dictionary=text)
    lengths = (
        pc.sum(pc.take(pc.binary_length(chunk.dictionary), chunk.indices)).as_py() or 0
        for column in table.columns
        for chunk in column.chunks
    )
    return max(decoded, stored + int(sum(lengths)))
