"""The version record: its TypedDict, the README's list of its keys, and the helpers that read it."""

from __future__ import annotations

import re
from pathlib import Path

from core.record import (
    RECORD_KEYS,
    VersionRecord,
    dataset_of,
    environment_of,
    export_of,
    metrics_of,
    recorded_accuracy,
    recorded_features,
    ref_of,
)

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_keys() -> set[str]:
    """The top-level keys the README's "What a version records" section names: `key` outside parentheses."""
    text = README.read_text()
    section = text.split("## What a version records\n", 1)[1].split("\n## ", 1)[0]
    bullets = "\n".join(line for line in section.splitlines() if line.startswith(("- ", "  ")))
    outside = re.sub(r"\([^()]*\)", "", bullets)
    return set(re.findall(r"`([a-z_0-9]+)`", outside))


def test_readme_documents_every_key_of_the_record_type_and_no_other():
    documented = documented_keys()
    assert documented == set(RECORD_KEYS), (
        f"README only: {sorted(documented - RECORD_KEYS)}; VersionRecord only: {sorted(RECORD_KEYS - documented)}"
    )


def test_a_saved_record_has_the_required_keys_and_only_known_ones(store, pima_path):
    from core import load_dataset, train
    from tests.conftest import PIMA_NAMES

    result = train(load_dataset(pima_path, names=PIMA_NAMES), "logistic_regression")
    for record in (store.save_trained(result, "pima"), store.get("pima:1"), store.list()[0]):
        assert set(VersionRecord.__required_keys__) <= set(record) <= RECORD_KEYS
    assert ref_of(record) == "pima:1" == store.load("pima").ref


def test_helpers_read_present_and_missing_sections():
    record = {
        "name": "m",
        "version": 3,
        "metrics": {"accuracy": 0.5},
        "claimed_metrics": {"accuracy": 0.75},
        "dataset": {"feature_names": ["a", "b"], "target": "y"},
        "environment": {"packages": {"numpy": "2"}},
        "exports": {"onnx": {"status": "ok"}},
    }
    assert ref_of(record) == "m:3"
    assert recorded_accuracy(record) == 0.5
    assert recorded_accuracy(record, "claimed_metrics") == 0.75
    assert recorded_features(record) == ["a", "b"]
    assert dataset_of(record)["target"] == "y"
    assert environment_of(record)["packages"] == {"numpy": "2"}
    assert export_of(record, "onnx") == {"status": "ok"} and export_of(record, "json") == {}
    bare = {"name": "m", "version": 1, "metrics": {}, "dataset": None, "environment": None}
    assert recorded_accuracy(bare) is None and recorded_features(bare) is None
    assert dataset_of(bare) == {} and metrics_of(bare, "claimed_metrics") == {} and environment_of(bare) == {}
