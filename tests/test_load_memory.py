"""Loading an upload does not hold more copies of its bytes than it needs (tracemalloc sees numpy too)."""

from __future__ import annotations

import io
import tracemalloc

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from core.safety.loader import _load_untrusted as load_untrusted


def test_a_joblib_upload_is_read_without_copying_the_whole_file():
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    model.coef_ = np.ones((1, 3_000_000))  # a 24 MB array, read by joblib in 16 MB chunks
    model.n_features_in_ = 3_000_000
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        loaded = load_untrusted(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.model.coef_.shape == (1, 3_000_000)
    # The array (one file's worth) and one 16 MB chunk in flight; a copy of the whole file is 24 MB more.
    assert peak < 2 * len(data), f"peak {peak:,} bytes for a {len(data):,}-byte file"
