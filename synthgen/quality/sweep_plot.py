"""sweep.png: each metric against each axis of a sweep, one panel per axis.

A panel's x axis holds the axis's values in grid order; each score (the CAS ratios, diversity,
the near-duplicate share, the filter's acceptance) is the mean over the cells with that value,
on the left scale (0..1-ish), and images/s on a scale of its own on the right.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the figure is written to the output, never shown

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

SCORES = ("cas", "ratio_logistic_regression", "ratio_svm_rbf", "diversity", "near_duplicate_share",
          "acceptance_rate")


def sweep_figure(results: dict[str, Any]) -> bytes:
    """The PNG bytes of the sweep's figure."""
    axes = results["axes"]
    figure, panels = plt.subplots(1, len(axes), figsize=(5.5 * len(axes), 4), squeeze=False)
    for panel, axis in zip(panels[0], axes, strict=True):
        _panel(panel, axis, results["cells"])
    figure.suptitle(f"synthgen sweep: {results['output']} ({results['per_class']} images per class a cell)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _panel(panel: Any, axis: dict[str, Any], cells: list[dict[str, Any]]) -> None:
    values = axis["values"]
    positions = range(len(values))
    for name in SCORES:
        means = _means(cells, axis["key"], values, name)
        if any(m is not None for m in means):
            points = [m if m is not None else float("nan") for m in means]
            panel.plot(positions, points, marker="o", label=name)
    panel.set_xticks(list(positions), [_label(v) for v in values])
    panel.set_xlabel(axis["key"])
    panel.set_ylabel("score (mean over the other axes)")
    speed = panel.twinx()
    speed.plot(positions, [m or float("nan") for m in _means(cells, axis["key"], values, "images_per_s")],
               marker="s", linestyle="--", color="gray", label="images/s")
    speed.set_ylabel("images/s per worker")
    lines, labels = panel.get_legend_handles_labels()
    more, more_labels = speed.get_legend_handles_labels()
    panel.legend(lines + more, labels + more_labels, fontsize="small", loc="best")


def _means(cells: list[dict[str, Any]], key: str, values: list[Any], metric: str) -> list[float | None]:
    out: list[float | None] = []
    for value in values:
        found = [c["metrics"].get(metric) for c in cells if c["settings"][key] == value]
        found = [f for f in found if f is not None]
        out.append(sum(found) / len(found) if found else None)
    return out


def _label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."
