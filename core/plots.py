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


def metrics_figure(long: pd.DataFrame) -> go.Figure:
    """Several versions' metrics (``core.views.metrics_long``: ``ref, metric, value``) side by side.

    Scores in [0, 1] (accuracy, F1...) share one axis. Otherwise the metrics live on different
    scales (a regressor's R² beside its MAE in target units): each metric gets a panel with its
    own axis, so a 0.47 R² is not a flat line under a 170 max error. A version keeps its colour
    in every panel.
    """
    from plotly.colors import qualitative  # why: a palette, only when a comparison is drawn
    from plotly.subplots import make_subplots  # why: likewise

    refs = list(dict.fromkeys(long["ref"].astype(str)))
    metrics = list(dict.fromkeys(long["metric"].astype(str)))
    colour = {ref: qualitative.Plotly[i % len(qualitative.Plotly)] for i, ref in enumerate(refs)}
    shared = bool(long["value"].between(0, 1).all())
    panels = [metrics] if shared else [[metric] for metric in metrics]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=None if shared else metrics)
    for i, panel in enumerate(panels):
        part = long[long["metric"].astype(str).isin(panel)]
        for ref in refs:
            mine = part[part["ref"].astype(str) == ref]
            figure.add_trace(
                go.Bar(
                    x=mine["metric"].astype(str),
                    y=mine["value"],
                    name=ref,
                    legendgroup=ref,
                    showlegend=i == 0,
                    marker_color=colour[ref],
                ),
                row=i // columns + 1,
                col=i % columns + 1,
            )
    figure.update_layout(barmode="group", legend_title_text="ref", height=max(360, 260 * rows))
    if shared:
        figure.update_yaxes(range=[0, 1.05])
    return figure
