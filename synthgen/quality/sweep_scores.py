"""Sweep scoring: the figures of one finished pilot job (a sweep's cell), and how cells rank.

- CAS against the real set (quality/evaluation.py), per classifier, with the ratio to the same
  classifier trained on real data; `cas_ratio_min` is the lower of the ratios (the default rank).
- Per-class diversity and the near-duplicate share, summed from the commit markers (the pairs
  each worker measured in its shard: output/diversity.py); no image is read again.
- The filter's acceptance rate (images kept / images drawn, from index.parquet) where a filter is set.
- Speed: images per second of one worker and seconds per 1,000 images, over the generation
  seconds its shards took (sampling, encoding, upload; model loading excluded).
Without a real set, the proxy scores alone (diversity, near-duplicates, acceptance, speed).
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib
import pyarrow.parquet as pq

from synthgen.output import diversity
from synthgen.output.catalog import Catalog
from synthgen.quality.evaluation import EvalConfig, RealSets, evaluate
from synthgen.quality.ranks import RANKS
from synthgen.storage.layout import INDEX_FILE


def score_cell(uri: str, real: RealSets | None,
               storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of a finished cell, as JSON-ready data; CAS against `real`, loaded once for
    every cell."""
    catalog = Catalog.open(uri, storage_options)
    markers = catalog.shards
    rows, seconds = sum(m.rows for m in markers), sum(m.seconds for m in markers)
    scores: dict[str, Any] = {
        "images": rows,
        "speed": {"images_per_s": round(rows / seconds, 2) if seconds else None,
                  "s_per_1000_images": round(1000 * seconds / rows, 3) if rows else None,
                  "generation_s": round(seconds, 3)},
        "diversity": _diversity(catalog),
        "filter": _acceptance(catalog),
        "classifiers": None,
        "cas_ratio_min": None,
    }
    if real:
        report = evaluate(EvalConfig(uri, real.test.source, storage_options=storage_options or {}), real)
        scores["classifiers"] = {key: {k: result[k] for k in ("accuracy", "real_accuracy", "ratio",
                                                              "per_class_accuracy")}
                                 for key, result in report["classifiers"].items()}
        scores["missing_classes"] = report["missing_classes"]
        ratios = [r["ratio"] for r in report["classifiers"].values() if r["ratio"] is not None]
        scores["cas_ratio_min"] = min(ratios) if ratios else None
    return scores


def metrics(scores: dict[str, Any]) -> dict[str, float | None]:
    """A cell's scores as flat named figures: what `--rank`, the table and the plot use."""
    flat: dict[str, float | None] = {"cas": scores["cas_ratio_min"]}
    for key, result in (scores["classifiers"] or {}).items():
        flat[f"cas_{key}"], flat[f"ratio_{key}"] = result["accuracy"], result["ratio"]
    flat["images_per_s"] = scores["speed"]["images_per_s"]
    flat["diversity"] = scores["diversity"]["mean_distance"]
    flat["near_duplicate_share"] = scores["diversity"]["near_duplicate_share"]
    flat["acceptance_rate"] = (scores["filter"] or {}).get("acceptance_rate")
    return flat


def ranked(cells: list[dict[str, Any]], rank: str) -> list[dict[str, Any]]:
    """Cells best first by `rank`; cells without that figure last, in grid order."""
    higher = RANKS[rank]

    def key(cell: dict[str, Any]) -> tuple[bool, float, int]:
        value = cell["metrics"].get(rank)
        return value is None, -(value or 0.0) if higher else (value or 0.0), cell["cell"]

    return sorted(cells, key=key)


def _diversity(catalog: Catalog) -> dict[str, Any]:
    per_class = diversity.from_markers(catalog.shards)
    total = sum(per_class.values(), diversity.PairStats())
    names = catalog.class_names
    return {"mean_distance": _round(total.mean_distance),
            "near_duplicate_share": _round(total.near_duplicate_fraction),
            "near_duplicate_distance": diversity.NEAR_DUPLICATE,
            "per_class": {names[label] if 0 <= label < len(names) else str(label): stats.summary()
                          for label, stats in sorted(per_class.items())}}


def _acceptance(catalog: Catalog) -> dict[str, Any] | None:
    """Images kept / images drawn, overall and per class; None without a filter."""
    if catalog.plan.spec.filter is None:
        return None
    index = pq.read_table(io.BytesIO(catalog.store.read_bytes(INDEX_FILE)), columns=["label", "filter_draws"])
    kept: dict[int, int] = {}
    drawn: dict[int, int] = {}
    for label, draws in zip(index.column("label").to_pylist(), index.column("filter_draws").to_pylist(),
                            strict=True):
        kept[label] = kept.get(label, 0) + 1
        drawn[label] = drawn.get(label, 0) + (draws or 1)
    names = catalog.class_names
    return {"acceptance_rate": round(sum(kept.values()) / max(1, sum(drawn.values())), 4),
            "draws": sum(drawn.values()),
            "per_class": {names[label]: round(kept[label] / drawn[label], 4) for label in sorted(kept)}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# sweep.png: each metric against each axis of a sweep, one panel per axis.
#
# A panel's x axis holds the axis's values in grid order; each score (the CAS ratios, diversity,
# the near-duplicate share, the filter's acceptance) is the mean over the cells with that value,
# on the left scale (0..1-ish), and images/s on a scale of its own on the right.
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
    """A tick label; a long one keeps its end, where a model folder's name is."""
    text = str(value)
    return text if len(text) <= 24 else "..." + text[-21:]
