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


def weights_figure(weights: pd.DataFrame, top: int = 30) -> go.Figure:
    """Feature importances or coefficients (``core.views.feature_weights``) as horizontal bars.

    Feature names are categories, even when they look like numbers (a headerless CSV's columns),
    so each keeps its own bar. A multi-class linear model gets one bar per class beside each
    other (grouped, never stacked: coefficients of different classes do not add up), for the
    ``top`` features of largest absolute weight in any class.
    """
    frame = weights.assign(feature=weights["feature"].astype(str))
    features = list(dict.fromkeys(frame["feature"]))[:top]  # feature_weights sorts by |weight|
    frame = frame[frame["feature"].isin(features)]
    coefficients = frame["kind"].iloc[0] == "coefficient"
    classes = [str(c) for c in dict.fromkeys(frame["class"])] if coefficients else []
    figure = go.Figure()
    for label in classes if len(classes) > 1 else [None]:
        part = frame if label is None else frame[frame["class"].astype(str) == label]
        figure.add_trace(
            go.Bar(x=part["weight"], y=part["feature"], orientation="h", name="weight" if label is None else label)
        )
    figure.update_layout(
        title="Coefficients" if coefficients else "Feature importances",
        barmode="group",
        showlegend=len(classes) > 1,
        legend_title_text="class",
        height=max(320, 40 + 22 * len(features) * max(1, len(classes))),
    )
    figure.update_yaxes(type="category", categoryorder="array", categoryarray=features[::-1])
    return figure
