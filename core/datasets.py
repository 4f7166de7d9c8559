"""Data sets: the built-in ones that ship inside scikit-learn, and CSV files or URLs.

A data set is a table of raw features plus one target column. Its fingerprint (sha256 of a
canonical CSV form) is recorded with every model trained on it, so a later re-score can tell
whether it is looking at the same data.

Where a source string may point is decided by ``SourceAccess`` (from the settings unless given):
http(s) URLs always go through ``core.fetch`` (size and time bounded); in the public demo only
https URLs to public addresses are read, and local paths, ``file://`` and every other scheme are
refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pandas as pd

from core import shipped
from core.csvheader import HEADER_MODES, HeaderMode, generic_names, header_prompt, looks_like_data
from core.errors import DatasetError, HeaderError, InvalidParameterError
from core.fetch import Fetcher, demo_policy, display_url, trusted_policy
from core.settings import Settings, load_settings
from core.shipped import BUILTIN_DATASETS, BUILTIN_PREFIX

#: The tutorial's data set, also shipped as ``builtin:pima``; its URL is the page's example of a URL.
PIMA_URL = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"
PIMA_NAMES = ("preg", "plas", "pres", "skin", "test", "mass", "pedi", "age", "class")


def _builtin_loaders() -> dict[str, Callable[..., Any]]:
    from sklearn import datasets  # deferred: a CSV, a page or a listing never needs scikit-learn's loaders

    return {
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
        "diabetes": datasets.load_diabetes,  # a regression target: disease progression after a year
    }


@dataclass(frozen=True)
class Dataset:
    """A table of raw features ``X`` and target ``y``, with where it came from."""

    X: pd.DataFrame
    y: pd.Series
    source: str
    target: str
    fingerprint: str

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.X.columns]

    @property
    def classes(self) -> list[Any]:
        return sorted(pd.unique(self.y).tolist(), key=_sort_key)

    def describe(self) -> dict[str, Any]:
        """The JSON-able ``dataset`` part of a model's metadata record."""
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "n_rows": len(self.X),
            "n_features": int(self.X.shape[1]),
            "feature_names": self.feature_names,
            "feature_types": feature_types(self.X),
            "target": self.target,
            "classes": [to_jsonable(c) for c in self.classes],
        }


def _sort_key(value: Any) -> tuple[str, Any]:
    # Mixed label types must still sort deterministically.
    return (type(value).__name__, value)


def to_jsonable(value: Any) -> Any:
    """Turn a numpy scalar (a class label, a count) into the matching plain Python value."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    return value


def feature_types(X: pd.DataFrame) -> dict[str, str]:
    """``number`` or ``category`` per column: how the pipeline treats it and how a form asks for it."""
    return {str(c): ("number" if pd.api.types.is_numeric_dtype(X[c]) else "category") for c in X.columns}


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """sha256 of the table written as CSV (header, ``\\n`` line ends, shortest float repr)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return hashlib.sha256(buffer.getvalue().encode("utf-8")).hexdigest()


def is_builtin(source: str) -> bool:
    return source.startswith(BUILTIN_PREFIX)


URL_SCHEMES = ("http", "https")
DEMO_REFUSAL = (
    "The public demo reads only built-in data sets, uploaded CSV files and https:// URLs; "
    "local paths, file:// and other URLs are refused"
)


@dataclass(frozen=True)
class CsvLimits:
    """The most a CSV may hold, whatever it comes from (a path, a URL, an upload, bytes)."""

    max_bytes: int = 200_000_000
    max_rows: int = 2_000_000
    max_columns: int = 2_000


@dataclass(frozen=True)
class SourceAccess:
    """What a source string may reach: local files or not, URLs through which fetcher; CSV limits."""

    local_files: bool
    fetcher: Fetcher
    limits: CsvLimits = CsvLimits()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SourceAccess:
        """Demo mode: no local files, https to public addresses only; else paths and http(s) URLs."""
        settings = settings if settings is not None else load_settings()
        make_policy = demo_policy if settings.demo else trusted_policy
        policy = make_policy(max_bytes=settings.url_max_bytes, timeout_s=settings.url_timeout_s)
        limits = CsvLimits(settings.csv_max_mb * 1_000_000, settings.csv_max_rows, settings.csv_max_columns)
        return cls(local_files=not settings.demo, fetcher=Fetcher(policy), limits=limits)


def _url_scheme(source: str) -> str:
    try:
        return urlsplit(source.strip()).scheme.lower()
    except ValueError:
        return ""


def _read_source(source: str | Path | bytes | io.IOBase, access: SourceAccess) -> tuple[bytes, str]:
    """The bytes of a CSV and its label; paths and URLs admitted by ``access``, at most its byte limit.

    One more byte than the limit is read, so a file over it is told apart from one exactly at it.
    """
    cap = access.limits.max_bytes + 1
    if isinstance(source, bytes):
        data, label = source[:cap], "uploaded file"
    elif isinstance(source, (str, Path)) and _url_scheme(str(source)) in URL_SCHEMES:
        data, label = access.fetcher.fetch(str(source).strip()).content, display_url(str(source).strip())
    elif isinstance(source, (str, Path)):
        if not access.local_files:
            raise DatasetError(DEMO_REFUSAL)
        label = str(source)
        try:
            with fsspec.open(str(source), "rb") as handle:  # a path, file:// or s3://..., as pandas read them
                data = handle.read(cap)
        except FileNotFoundError as exc:
            raise DatasetError(f"No such data file: {label}") from exc
        except OSError as exc:
            raise DatasetError(f"Could not read the file {label}: {_first_line(exc)}") from exc
    else:
        read: Any = source.read(cap)  # bytes from a binary file object (an upload), text from a text one
        data, label = (read.encode("utf-8") if isinstance(read, str) else bytes(read)), "uploaded file"
    if len(data) > access.limits.max_bytes:
        raise DatasetError(
            f"{label} is larger than the {access.limits.max_bytes:,}-byte limit for CSV data (MODELSHELF_CSV_MAX_MB)"
        )
    return data, label


#: Column separators a CSV may use, in the order preferred when several fit equally well.
DELIMITERS = (",", ";", "\t", "|")
#: A number written with a decimal comma (``1,5``, ``-0,25``, ``1.234,5``) or a whole number.
_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+(?:[eE][+-]?\d+)?")
_WHOLE = re.compile(r"[+-]?\d+")
_SAMPLE_BYTES = 64 * 1024
_SAMPLE_ROWS = 100


#: The longest field a first line is allowed per column when it does not fit the sample.
_FIELD_BYTES = 256


def _sample(data: bytes, label: str, max_columns: int) -> str:
    """The first lines of a CSV as text (whole lines, at least the first), to judge its separator by.

    A first line longer than ``max_columns`` fields of ``_FIELD_BYTES`` could not be read anyway, and
    splitting it costs the server about 30 bytes per byte: it is refused before it is decoded.
    """
    end = data.rfind(b"\n", 0, _SAMPLE_BYTES)
    if end < 0:
        end = data.find(b"\n")
        length = len(data) if end < 0 else end
        most = max(_SAMPLE_BYTES, max_columns * _FIELD_BYTES)
        if length > most:
            raise DatasetError(
                f"{label} cannot be read: its first line is {length:,} bytes, more than {max_columns:,} columns "
                f"(MODELSHELF_CSV_MAX_COLUMNS) of up to {_FIELD_BYTES} bytes each ({most:,})"
            )
    try:
        return data[: len(data) if end < 0 else end].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"Could not read {label}: it is not UTF-8 text ({_first_line(exc)})") from exc


def _sampled_rows(data: bytes, label: str, max_columns: int) -> tuple[str, list[list[str]]]:
    """The separator and the sampled rows it splits; a line the csv module cannot split is one clear line."""
    sample = _sample(data, label, max_columns)
    try:
        delimiter = sniff_delimiter(sample)
        return delimiter, _rows(sample, delimiter)
    except csv.Error as exc:
        raise DatasetError(f"{label} cannot be read: {exc}") from exc


def _rows(sample: str, delimiter: str) -> list[list[str]]:
    rows = csv.reader(io.StringIO(sample), delimiter=delimiter, skipinitialspace=True)
    return [row for _, row in zip(range(_SAMPLE_ROWS), rows, strict=False) if row]


def sniff_delimiter(sample: str) -> str:
    """The separator that splits every sampled line into the same number (two or more) of fields.

    No guess from letters (``csv.Sniffer`` took the ``y`` of a one-column file ``y`` for one): a
    file no separator splits that way is one column. When several fit, the one giving more fields
    wins, and ``;`` or tab wins over ``,`` when its fields hold decimal-comma numbers (``1,5;2,5``).
    """
    best: tuple[bool, int, int] | None = None
    chosen = ","
    for rank, delimiter in enumerate(DELIMITERS):
        rows = _rows(sample, delimiter)
        counts = {len(row) for row in rows}
        if len(counts) != 1 or (fields := counts.pop()) < 2:
            continue
        decimals = delimiter != "," and any(_DECIMAL_COMMA.fullmatch(v.strip()) for row in rows[1:] for v in row)
        key = (decimals, fields, -rank)
        if best is None or key > best:
            best, chosen = key, delimiter
    if best is None:  # a ragged line: the separator most lines agree with, so the parser names that line
        agreeing = {d: _agreeing(_rows(sample, d)) for d in DELIMITERS}
        top = max(agreeing, key=lambda d: agreeing[d])
        chosen = top if agreeing[top] > 1 else ","
    return chosen


def _agreeing(rows: list[list[str]]) -> int:
    """How many rows split into as many fields as the first, when it has two or more."""
    return sum(len(row) == len(rows[0]) for row in rows) if rows and len(rows[0]) > 1 else 0


def _decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is a number with a decimal comma (``1,5``) become numbers."""
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].dropna().astype(str).str.strip()
        if values.empty or not values.str.fullmatch(_DECIMAL_COMMA.pattern + "|" + _WHOLE.pattern).all():
            continue
        if values.str.contains(",", regex=False).any():
            plain = frame[column].astype("string").str.strip().str.replace(".", "", regex=False)
            frame[column] = pd.to_numeric(plain.str.replace(",", ".", regex=False)).astype("float64")
    return frame


def checked_header(header: str, names: Sequence[str] | None) -> HeaderMode:
    """``header`` as a ``HeaderMode``; names given mean the first row is data (so not ``first-row``)."""
    if header not in HEADER_MODES:
        raise InvalidParameterError(f"header must be one of {', '.join(HEADER_MODES)}, not {header!r}")
    if names and header == "first-row":
        raise InvalidParameterError("--names and --header contradict: names given mean the first row is data")
    mode: HeaderMode = "none" if names else header
    return mode


def read_table(
    source: str | Path | bytes | io.IOBase,
    names: Sequence[str] | None = None,
    access: SourceAccess | None = None,
    header: HeaderMode = "auto",
) -> pd.DataFrame:
    """Read a CSV from a path, URL, bytes or file object; ``names`` given means the file has no header.

    ``header``: ``"first-row"`` (column names), ``"none"`` (data; ``column_1`` ... unless ``names``)
    or ``"auto"``, which refuses a first row that looks like data (``HeaderError``, see
    ``core.csvheader``) rather than lose a row. Paths and URLs are admitted by ``access`` (default:
    from the settings, so demo mode applies), whose limits (bytes, rows, columns) hold for every kind
    of source. The separator is one of ``DELIMITERS`` (``sniff_delimiter``); with ``;``, tab or
    ``|``, decimal commas are read as numbers.
    """
    mode = checked_header(header, names)
    access = access if access is not None else SourceAccess.from_settings()
    data, label = _read_source(source, access)
    limits = access.limits
    delimiter, rows = _sampled_rows(data, label, limits.max_columns)
    first = next(iter(rows), [])
    if len(first) > limits.max_columns:
        raise DatasetError(
            f"{label} has {len(first):,} columns; at most {limits.max_columns:,} are read (MODELSHELF_CSV_MAX_COLUMNS)"
        )
    if mode == "auto" and looks_like_data(rows):
        raise HeaderError(header_prompt(label))
    if mode != "none":
        seen: set[str] = set()
        for column in (h.strip() for h in first):
            if column in seen:  # before pandas renames the second one ``a.1``
                raise DatasetError(f"{label} has the column {column!r} twice: give each column its own name")
            seen.add(column)
    kwargs: dict[str, Any] = {"sep": delimiter, "skipinitialspace": True, "nrows": limits.max_rows + 1}
    if mode == "none":
        kwargs.update(header=None)
    try:
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", **kwargs)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"Could not read {label}: it is not UTF-8 text ({_first_line(exc)})") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
        raise DatasetError(f"{label} is not a readable CSV table: {_first_line(exc)}") from exc
    if frame.empty:
        raise DatasetError(f"{label} has no rows")
    if len(frame) > limits.max_rows:
        raise DatasetError(f"{label} has more than {limits.max_rows:,} rows (MODELSHELF_CSV_MAX_ROWS)")
    if names:
        if frame.shape[1] != len(names):
            raise DatasetError(f"{label} has {frame.shape[1]} columns but {len(names)} names were given")
        frame.columns = list(names)
    elif mode == "none":
        frame.columns = generic_names(frame.shape[1])
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise DatasetError(f"{label} has duplicate column names")
    return _decimal_commas(frame) if delimiter != "," else frame


def detect_header(source: str | Path | bytes | io.IOBase, access: SourceAccess | None = None) -> HeaderMode:
    """What a page preselects: ``"none"`` when the first row looks like data, else ``"first-row"``."""
    access = access if access is not None else SourceAccess.from_settings()
    data, label = _read_source(source, access)
    return "none" if looks_like_data(_sampled_rows(data, label, access.limits.max_columns)[1]) else "first-row"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: ``load_iris().feature_names``: the names scikit-learn gives the columns of its iris CSV.
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _iris_as_shipped() -> pd.DataFrame | None:
    """``load_iris(as_frame=True).frame`` without importing scikit-learn (0.7 s here): the CSV that
    ships inside the package, parsed as its ``load_csv_data`` does. Train's default data set, so a
    cold dashboard draws its first page sooner. None when the file is not the one expected."""
    import importlib.util  # deferred: only this one data set reads a file out of scikit-learn

    import numpy as np  # deferred with it: a CSV's frame needs no direct numpy

    spec = importlib.util.find_spec("sklearn")  # finds the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0], "datasets", "data", "iris.csv") if folders else None
    if path is None or not path.is_file():
        return None
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2 or rows[0][:2] != [str(len(rows) - 1), str(len(IRIS_FEATURES))]:
        return None
    features = np.asarray([row[:-1] for row in rows[1:]], dtype=np.float64)
    target = np.asarray([row[-1] for row in rows[1:]], dtype=int)
    return pd.concat([pd.DataFrame(features, columns=IRIS_FEATURES), pd.Series(target, name="target")], axis=1)


def load_builtin(name: str) -> pd.DataFrame:
    """A built-in data set as a frame whose last column is the label: scikit-learn's (``target``) or shipped here."""
    if name in shipped.SHIPPED:
        return shipped.load_shipped(name)
    if name == "iris" and (frame := _iris_as_shipped()) is not None:
        return frame
    loaders = _builtin_loaders()
    if name not in loaders:
        raise DatasetError(
            f"Unknown built-in data set {name!r}; choose one of: "
            + ", ".join(BUILTIN_PREFIX + key for key in BUILTIN_DATASETS)
        )
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def load_frame(
    source: str | Path | bytes | io.IOBase,
    names: Sequence[str] | None = None,
    access: SourceAccess | None = None,
    header: HeaderMode = "auto",
) -> pd.DataFrame:
    """The raw table behind a data source: ``builtin:NAME``, a CSV path or URL, or CSV bytes."""
    if isinstance(source, str) and is_builtin(source):
        if names or header != "auto":
            raise DatasetError("--names, --header and --no-header apply to CSV files, not to built-in data sets")
        return load_builtin(source[len(BUILTIN_PREFIX) :])
    return read_table(source, names, access, header)


def builtin_target(source: str) -> str:
    """The column a built-in data set predicts by default: ``target``, or a shipped set's own."""
    name = source[len(BUILTIN_PREFIX) :]
    return shipped.default_target(name) if name in shipped.SHIPPED else "target"


def from_frame(frame: pd.DataFrame, target: str | None = None, source: str = "dataframe") -> Dataset:
    """Split a table into features and target (the last column when ``target`` is not given)."""
    if frame.shape[1] < 2:
        raise DatasetError(f"{source} needs at least one feature column and a target column")
    target = target if target is not None else str(frame.columns[-1])
    if target not in frame.columns:
        raise DatasetError(
            f"Target column {target!r} is not in {source}; columns are: " + ", ".join(map(str, frame.columns))
        )
    missing = int(frame[target].isna().sum())
    if missing == len(frame):
        raise DatasetError(f"Every row of {source} lacks a value in the target column {target!r}")
    if missing:
        raise DatasetError(
            f"{missing} of {len(frame)} rows of {source} lack a value in the target column {target!r}: "
            "fill them or drop those rows"
        )
    y = frame[target]
    if y.nunique() < 2:
        raise DatasetError(f"The target column {target!r} has a single class; a classifier needs two or more")
    X = frame.drop(columns=[target])
    return Dataset(X=X, y=y, source=source, target=target, fingerprint=fingerprint_frame(frame))


def parse_names(text: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``: column names typed by a person; None when there are none."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or None


def load_dataset(
    source: str | Path | bytes | io.IOBase,
    names: Sequence[str] | str | None = None,
    target: str | None = None,
    label: str | None = None,
    access: SourceAccess | None = None,
    header: HeaderMode = "auto",
) -> Dataset:
    """Load a data set for training or scoring: ``builtin:iris``, ``data.csv``, ``https://.../x.csv``.

    ``names`` (a list or a comma-separated string) means the CSV has no header row; ``header`` says
    how to read the first row (``read_table``); ``label`` names an in-memory source (an upload) in
    the recorded metadata; ``access`` admits paths and URLs (default: from the settings). Without a
    ``target``, a built-in set's own (``builtin_target``), else the last column.
    """
    if isinstance(names, str):
        names = parse_names(names)
    frame = load_frame(source, names, access, header)
    if target is None and isinstance(source, str) and is_builtin(source):
        target = builtin_target(source)
    described = label or (str(source) if isinstance(source, (str, Path)) else "uploaded file")
    return from_frame(frame, target=target, source=described)
