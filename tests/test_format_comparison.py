"""Saving one model in every format: sizes are real, reloads work, safety is stated."""

from __future__ import annotations

import pytest

from core import formats, load_dataset, train
from core.errors import InvalidParameterError
from core.format_comparison import compare_formats, measure_format


@pytest.fixture(scope="module")
def model():
    return train(load_dataset("builtin:breast_cancer"), "random_forest", {"n_estimators": 20}).model


def test_every_variant_is_measured(model):
    table = compare_formats(model)
    assert list(table["label"]) == [
        "pickle",
        "joblib (compress 0)",
        "joblib (compress 3)",
        "joblib (compress 9)",
        "skops",
    ]
    for row in table.itertuples():
        assert row.size_bytes == len(formats.dumps(model, row.format, row.compress))
        assert row.save_seconds > 0 and row.load_seconds > 0
    assert table.set_index("label").loc["skops", "safe_for_strangers"]
    assert not table.set_index("label")[["safe_for_strangers"]].drop(index="skops").any().item()


def test_compression_shrinks_the_file(model):
    table = compare_formats(model).set_index("label")["size_bytes"]
    assert table["joblib (compress 3)"] < table["joblib (compress 0)"]


def test_bad_variant_is_refused(model):
    with pytest.raises(InvalidParameterError, match="compress"):
        measure_format(model, "skops", 3)
    with pytest.raises(InvalidParameterError, match="repeats"):
        measure_format(model, "pickle", 0, repeats=0)
