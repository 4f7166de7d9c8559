"""Figures of a regressor's held-out predictions: predicted vs actual, and the residuals.

Built here (plotly figures, no Streamlit) so any front end draws the same thing and the figures
are tested without a browser; the pages only pass them to ``st.plotly_chart``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def prediction_frame(y_true: Any, y_pred: Any) -> pd.DataFrame:
    """``actual, predicted, residual`` (actual minus predicted) rows, one per held-out row."""
    actual = np.asarray(y_true, dtype=float).ravel()
    predicted = np.asarray(y_pred, dtype=float).ravel()
    return pd.DataFrame({"actual": actual, "predicted": predicted, "residual": actual - predicted})


def predicted_vs_actual(points: pd.DataFrame, title: str = "Predicted vs actual") -> go.Figure:
    """Each held-out row as a point, with the diagonal a perfect model would lie on."""
    low = float(min(points["actual"].min(), points["predicted"].min()))
    high = float(max(points["actual"].max(), points["predicted"].max()))
    figure = go.Figure(
        [
            go.Scatter(x=points["actual"], y=points["predicted"], mode="markers", name="rows", opacity=0.7),
            go.Scatter(
                x=[low, high], y=[low, high], mode="lines", name="perfect", line={"dash": "dash", "color": "grey"}
            ),
        ]
    )
    figure.update_layout(title=title, xaxis_title="actual", yaxis_title="predicted", showlegend=False)
    return figure


def residuals(points: pd.DataFrame, title: str = "Residuals (actual - predicted)") -> go.Figure:
    """Residual against prediction, around the zero line: a pattern means the model misses something."""
    figure = go.Figure(
        [go.Scatter(x=points["predicted"], y=points["residual"], mode="markers", name="rows", opacity=0.7)]
    )
    figure.add_hline(y=0.0, line={"dash": "dash", "color": "grey"})
    figure.update_layout(title=title, xaxis_title="predicted", yaxis_title="residual", showlegend=False)
    return figure
