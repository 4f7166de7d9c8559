"""A public demo's visitors cannot make the server compute without bounds through a saved model.

Training in demo mode runs in a worker under limits (``tests/test_demo_training.py``), but what a
visitor does with a model afterwards used to run in the server process: a batch prediction or a
re-score on their own CSV, the Formats page, a conversion. A k-NN model is cheap to fit and costly
to call (every prediction measures the distance to every training row), so one upload of rows to
predict kept a server core busy for as long as the visitor liked. In demo mode every version's model
now lives in a sandboxed worker (imported ones always did), and each call there is stopped at
``load_timeout_s``. The slow model and rows are made here; the time limit is lowered to 1 s.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from core import Store, formats
from core.errors import InvalidParameterError, LimitError
from core.format_comparison import DEFAULT_VARIANTS, compare_formats
from core.portable.exports import export_version, predict_rows
from core.safety import WorkerModel

#: A bound no stopped call comes near (the in-process prediction below takes several seconds).
GENEROUS_S = 30
COLUMNS = [f"f{i}" for i in range(20)]


def _noise(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)
    frame["label"] = rng.integers(0, 2, rows)
    return frame


@pytest.fixture(scope="module")
def slow_knn() -> tuple[KNeighborsClassifier, pd.DataFrame]:
    """Fitted in a moment on 80,000 rows; predicting 20,000 rows takes seconds of CPU (9 s seen)."""
    train = _noise(80_000, 0)
    model = KNeighborsClassifier(algorithm="brute").fit(train[COLUMNS], train["label"])
    return model, _noise(20_000, 1)


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", "1")
    yield


def _saved(store: Store, model: KNeighborsClassifier, rows: pd.DataFrame) -> str:
    kept = rows.head(50)
    record = store.save(model, "knn", X_test=kept[COLUMNS], y_test=kept["label"], owner="visitor")
    return f"{record['name']}:{record['version']}"


def _stopped_here(call, what: str, cpu_s: float = 1.0) -> None:
    """``call`` ends with the time limit's LimitError, and the model's work was not done in this
    process: it used less than ``cpu_s`` of CPU here (reading a CSV is this process's share)."""
    cpu, wall = time.process_time(), time.monotonic()
    with pytest.raises(LimitError, match=r"longer than 1 s"):
        call()
    assert time.monotonic() - wall < GENEROUS_S, what
    assert time.process_time() - cpu < cpu_s, f"{what}: the server process did the work itself"


def test_a_batch_prediction_on_a_visitors_rows_is_stopped_at_the_limit(store: Store, slow_knn, demo) -> None:
    model, rows = slow_knn
    ref = _saved(store, model, rows)
    loaded = store.load(ref)
    assert isinstance(loaded.model, WorkerModel), "a demo's model object must not live in the server process"
    _stopped_here(lambda: store.predict(ref, rows[COLUMNS], loaded=loaded), "batch prediction")
    # The limit stops one call, not the model: a small batch is answered next.
    assert len(store.predict(ref, rows[COLUMNS].head(5), loaded=loaded)) == 5


def test_a_rescore_on_a_visitors_csv_is_stopped_at_the_limit(store: Store, slow_knn, demo) -> None:
    model, rows = slow_knn
    ref = _saved(store, model, rows)
    csv = rows.to_csv(index=False).encode()
    _stopped_here(lambda: store.evaluate(ref, data=csv, target="label"), "re-score on a CSV", cpu_s=2.0)


def test_nothing_a_visitor_asks_of_a_model_unpickles_it_in_the_server(
    store: Store, slow_knn, demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-score, predict, compare formats, convert, diagram: all answered, none by loading the file here."""
    rows = slow_knn[1]
    small = KNeighborsClassifier().fit(rows[COLUMNS].head(300), rows["label"].head(300))
    ref = _saved(store, small, rows)

    def refuse(*args, **kwargs):
        raise AssertionError("a model file was loaded in the server process in demo mode")

    monkeypatch.setattr(formats, "load_trusted", refuse)
    # Not a test of the time limit: a worker's first ONNX or skops call imports those packages.
    monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", str(GENEROUS_S))
    loaded = store.load(ref)
    assert isinstance(loaded.model, WorkerModel)
    assert store.evaluate(ref, loaded=loaded).reproduced is True
    assert list(store.predict(ref, rows[COLUMNS].head(3), loaded=loaded)["prediction"]) == list(
        small.predict(rows[COLUMNS].head(3))
    )
    table = compare_formats(loaded.model, repeats=2)  # measured in the worker
    assert list(table["label"]) == [f"{f} (compress {c})" if f == "joblib" else f for f, c in DEFAULT_VARIANTS]
    assert (table["size_bytes"] > 0).all() and (table["load_seconds"] > 0).all()
    assert table["safe_for_strangers"].tolist() == [False, False, False, False, True]
    diagram = loaded.model.diagram()
    assert "KNeighborsClassifier" in diagram and diagram.lstrip().startswith("<style>")
    # The one-row form's engine: the worker, not onnxruntime in this process (nor a conversion for it).
    assert predict_rows(store, ref, rows[COLUMNS].head(1))[1] == "sklearn"
    assert "onnx" not in (store.get(ref).get("exports") or {})
    for fmt in ("joblib", "skops", "json"):
        assert export_version(store, ref, fmt).data
    bundle = export_version(store, ref, "bundle").data
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        card = archive.read("README.md").decode()
    assert "a KNeighborsClassifier (" in card and "WorkerModel" not in card  # named by its class, not the proxy
    with pytest.raises(InvalidParameterError, match="in demo mode"):
        store.load(ref, trust=True)


def test_a_format_comparison_is_stopped_at_the_limit(store: Store, demo) -> None:
    """Compression 9 and skops of a large model, five times over: over the limit, stopped in the worker."""
    from sklearn.ensemble import RandomForestClassifier

    frame = _noise(5_000, 2)
    forest = RandomForestClassifier(n_estimators=150, random_state=0).fit(frame[COLUMNS], frame["label"])
    ref = _saved(store, forest, frame)
    loaded = store.load(ref)
    _stopped_here(lambda: compare_formats(loaded.model, repeats=5), "format comparison")


def test_outside_demo_mode_a_trained_model_is_the_object_itself(store: Store, slow_knn) -> None:
    rows = slow_knn[1]
    ref = _saved(store, KNeighborsClassifier().fit(rows[COLUMNS].head(100), rows["label"].head(100)), rows)
    loaded = store.load(ref)
    assert isinstance(loaded.model, KNeighborsClassifier)
    assert store.load(ref, trust=True).model.n_neighbors == 5


def test_the_dashboard_stops_a_slow_batch_with_one_line_and_keeps_serving(
    slow_knn, demo, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the pages: the slow CSV gets one error line; the diagram and Formats still answer."""
    import base64

    import streamlit as st

    from tests.test_app import DETAIL, FORMATS, _iframes, open_page, open_tab

    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "app"))
    st.cache_resource.clear()
    st.cache_data.clear()
    model, rows = slow_knn
    store = Store(tmp_path / "app")
    ref = _saved(store, model, rows)
    small = KNeighborsClassifier().fit(rows[COLUMNS].head(300), rows["label"].head(300))
    small_ref = f"small:{store.save(small, 'small', owner='visitor')['version']}"
    store.close()
    try:
        at = open_tab(open_page(DETAIL, model=ref), "Predict")
        at.file_uploader(key=f"batch_{ref}").upload("rows.csv", rows[COLUMNS].to_csv(index=False).encode(), "text/csv")
        at.run()
        assert not at.exception
        assert [e.value.count("\n") for e in at.error] == [0], [e.value for e in at.error]
        assert "longer than 1 s" in at.error[0].value
        at.file_uploader(key=f"batch_{ref}").upload(
            "rows.csv", rows[COLUMNS].head(4).to_csv(index=False).encode(), "text/csv"
        )
        at.run()
        assert not at.exception and not at.error and len(at.dataframe[-1].value) == 4
        monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", str(GENEROUS_S))  # as above: imports, not a limit
        at = open_page(DETAIL, model=small_ref)
        at.toggle(key=f"diagram_{small_ref}").set_value(True).run()
        (src,) = _iframes(at)
        assert "KNeighborsClassifier" in base64.b64decode(src.split(",", 1)[1]).decode()

        at = open_page(FORMATS, model=small_ref)
        at.button(key="compare_formats").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert len(at.dataframe[0].value) == 5
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def test_a_model_with_thousands_of_classes_predicts_without_quadratic_work() -> None:
    """Before: each class's probability column was inserted into the table one at a time, at a cost
    that grew with the columns already there: one row from a 6,000-class GaussianNB (a 0.3 MB
    upload, one training row per class) took 40 s of the server's CPU. Now the columns are added
    at once, in core.frames and in the ONNX path alike."""
    from sklearn.naive_bayes import GaussianNB

    from core.frames import predict_table

    classes = 6_000
    X = np.arange(classes * 2, dtype=np.float64).reshape(classes, 2)
    model = GaussianNB().fit(X, np.arange(classes))
    cpu = time.process_time()
    table = predict_table(model, pd.DataFrame(X[:5], columns=["a", "b"]), {})
    assert time.process_time() - cpu < 5, "the probability columns cost quadratic time"
    assert table.shape == (5, 2 + 1 + classes) and list(table.columns[3:6]) == ["proba_0", "proba_1", "proba_2"]
    assert table["prediction"].tolist() == [0, 1, 2, 3, 4]


def test_a_target_with_thousands_of_classes_records_and_draws_no_quadratic_matrix() -> None:
    """Before: a visitor's CSV with a text target of 1,000 labels made a 1,000 x 1,000 confusion
    matrix: a million numbers in the version's record, and a chart built cell by cell on every run
    of the Train page (12.5 s of the server's CPU each). Past 100 classes no matrix is recorded,
    and past 30 none is drawn; below, the chart's cells are built at once."""
    from sklearn.naive_bayes import GaussianNB

    from app_pages.common import confusion_chart_spec
    from core.metrics import classification_metrics
    from core.views import confusion_frame

    def metrics_of(classes: int) -> dict:
        X = np.arange(classes * 2, dtype=np.float64).reshape(classes, 2)
        y = np.array([f"label {i}" for i in range(classes)])
        return classification_metrics(GaussianNB().fit(X, y), X, y)

    many = metrics_of(1_000)
    assert many["confusion_matrix"] is None and many["accuracy"] == 1.0
    assert len(json.dumps(many)) < 2_000
    assert confusion_frame(metrics_of(31)) is None  # recorded, not drawn
    cm = confusion_frame(metrics_of(30))
    assert cm is not None and cm.shape == (30, 30)
    table, spec = confusion_chart_spec(cm)
    cells = table.to_pandas()
    assert len(cells) == 900 and cells["count"].sum() == 30
    diagonal = cells[cells["true"] == cells["predicted"]]
    assert diagonal["count"].tolist() == [1] * 30 and diagonal["true"].iloc[0] == "label 0"
    assert spec["encoding"]["x"]["sort"][:2] == ["label 0", "label 1"]


def test_a_visitors_version_is_not_serialised_as_skops_in_the_server(tmp_path) -> None:
    """Before: saving a demo visitor's trained model as skops built the whole file in the server's
    memory (skops has no streaming writer), at a cost that grows with the model's objects: a 2 MB
    pickle of a 500-stage, 10-class boosting model became 157 MB and 13.6 s of the server's CPU,
    and only then met the quota. A visitor's versions are saved as pickle or joblib (both written
    as they go, their size bounded by the quota); skops stays a download, made in the worker."""
    from sklearn.ensemble import GradientBoostingClassifier

    from core.formats import FORMATS, VISITOR_FORMATS
    from core.store import Quota

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 10, 300)
    model = GradientBoostingClassifier(n_estimators=50, max_depth=1, random_state=0).fit(X, y)
    quota = Quota(max_versions=100, max_bytes=10**9, visitor_max_versions=10, visitor_max_bytes=10**8)
    store = Store(tmp_path / "demo", quota=quota)
    try:
        cpu = time.process_time()
        with pytest.raises(InvalidParameterError, match="saved as pickle or joblib"):
            store.save(model, "boosted", format="skops", owner="visitor")
        assert time.process_time() - cpu < 0.5 and store.count() == 0
        assert VISITOR_FORMATS == ("pickle", "joblib") and set(VISITOR_FORMATS) < set(FORMATS)
        for fmt in VISITOR_FORMATS:
            assert store.save(model, "boosted", format=fmt, owner="visitor")["format"] == fmt
        assert store.save(model, "operator", format="skops")["format"] == "skops"  # the operator: no quota
    finally:
        store.close()


def test_scoring_a_classifier_on_a_regression_target_is_refused_in_linear_time() -> None:
    """Before: each distinct value of the target was looked for among the classes with its own
    ``np.isin`` call (a pass over the classes each): 200,000 values against a 5,000-class model
    took 108 s of the server's CPU before the one-line refusal; now one hashed lookup each."""
    from core.errors import DatasetError
    from core.tasks import check_classifier_target

    y = pd.Series(np.random.default_rng(4).normal(size=200_000), name="price")
    cpu = time.process_time()
    with pytest.raises(DatasetError, match=r"with no class for 200,?000 of its 200,?000 values"):
        check_classifier_target(y, np.arange(5_000), "prices.csv")
    assert time.process_time() - cpu < 2


def test_a_busy_or_stopped_worker_is_not_recorded_as_a_refused_conversion(store: Store, monkeypatch) -> None:
    """A LimitError says nothing about the model: the ONNX export is tried again next time, where a
    refusal would be kept for good (and the one-row form and bundles would skip ONNX from then on)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from core.portable import derived

    X, y = load_iris(return_X_y=True)
    ref = f"iris:{store.save(LogisticRegression(max_iter=500).fit(X, y), 'iris')['version']}"

    def busy(*args, **kwargs):
        raise LimitError("All 2 model workers stayed busy for 30 s: try again in a minute", "busy")

    monkeypatch.setattr(derived, "onnx_of", busy)
    with pytest.raises(LimitError, match="busy"):
        derived.ensure_onnx(store, ref)
    assert "onnx" not in (store.get(ref).get("exports") or {})
    monkeypatch.undo()
    assert derived.ensure_onnx(store, ref)[1]["status"] == "ok"


def test_a_rescore_is_reproduced_to_twelve_significant_digits() -> None:
    """The worker's one BLAS thread can move a score's last bit (seen on an AMD EPYC): the same
    model, reproduced. A difference in the eleventh digit is a difference."""
    from core.store.scoring import differences

    recorded = {"r2": 0.5104686407809311, "mae": 42.15}
    assert differences(recorded, {"r2": 0.510468640780931, "mae": 42.15}, "regression") == {}
    moved = differences(recorded, {"r2": 0.5104686407909311, "mae": 42.15}, "regression")
    assert list(moved) == ["r2"] and moved["r2"] == pytest.approx(1e-11)


def test_a_conversion_larger_than_a_visitor_may_keep_is_refused_in_the_worker(store: Store, demo, monkeypatch) -> None:
    """Before: a conversion came back whole (base64 in the worker's JSON reply, up to 512 MB) and
    was decoded and kept in the server's memory for the download; a skops file can be many times
    its pickle. In demo mode a conversion may take what a visitor may keep."""
    from sklearn.ensemble import RandomForestClassifier

    frame = _noise(2_000, 5)
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(frame[COLUMNS], frame["label"])
    ref = f"forest:{store.save(forest, 'forest')['version']}"  # the operator's: no quota on its size
    monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", "30")
    monkeypatch.setenv("MODELSHELF_DEMO_SESSION_MAX_BYTES", "100000")
    size = store.get(ref)["size_bytes"]
    assert size > 100_000
    with pytest.raises(InvalidParameterError, match=r"The skops form of this model takes .* MB, more than the 0.1 MB"):
        export_version(store, ref, "skops")
    monkeypatch.setenv("MODELSHELF_DEMO_SESSION_MAX_BYTES", str(50 * size))
    assert len(export_version(store, ref, "skops").data) > size
