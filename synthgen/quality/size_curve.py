"""`synthgen eval --sizes`: CAS against the share of the synthetic set trained on, so that a user
sees whether more images still help before paying for them.

The subsets are nested and stratified: each class's images are put in one random order (a
generator seeded with `seed`), and the subset of fraction f takes the first ceil(f x n) of each
class, so a larger subset holds every image of a smaller one. Each subset trains the same
classifiers as `synthgen eval` (quality/evaluation.py), tested on the same real images; the
ratio is to the same classifier trained on the real training set, fitted once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synthgen.errors import UserError
from synthgen.quality.evaluation import CLASSIFIERS, EvalConfig, RealSets, accuracy_on_real, load_real
from synthgen.quality.features import Labeled, load_labeled


def parse_sizes(text: str) -> list[float]:
    """"0.1,0.25,0.5,1" -> ascending fractions in (0, 1]."""
    try:
        sizes = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError("--sizes", text, "give fractions of the dataset, e.g. 0.1,0.25,0.5,1") from None
    if not sizes or not all(0.0 < s <= 1.0 for s in sizes):
        raise UserError("--sizes", text, "each size is a fraction in (0, 1], e.g. 0.1,0.25,0.5,1")
    return sizes


def nested_subsets(labels: np.ndarray, sizes: list[float], seed: int) -> list[np.ndarray]:
    """Row indices of each subset: per class, the first ceil(f x n) of one seeded order."""
    rng = np.random.default_rng(seed)
    orders = {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    return [np.sort(np.concatenate([rows[: max(1, math.ceil(f * len(rows)))] for rows in orders.values()]))
            for f in sizes]


def size_curve(config: EvalConfig, sizes: list[float], seed: int = 0,
               real: RealSets | None = None) -> dict[str, Any]:
    """Per size: the images trained on and each classifier's CAS and ratio; `real`: the real
    sets, if already loaded."""
    if real is None:
        real = load_real(config.real, config.real_train, config.storage_options)
    synthetic = load_labeled(config.uri, real.space, "data", config.max_per_class, config.storage_options,
                             config.split).relabel(real.test)
    reference = {key: real.real_only(key) for key in CLASSIFIERS}
    reference = {key: None if a is None else round(a, 4) for key, a in reference.items()}
    points = []
    for fraction, rows in zip(sizes, nested_subsets(synthetic.labels, sizes, seed), strict=True):
        subset = Labeled(synthetic.features[rows], synthetic.labels[rows], synthetic.class_names,
                         synthetic.source)
        if len(np.unique(subset.labels)) < 2:
            raise UserError("--sizes", fraction, "leaves fewer than two classes to train on; "
                                                 "use larger sizes")
        scores = {}
        for key in CLASSIFIERS:
            accuracy, against = round(accuracy_on_real(key, subset, real), 4), reference[key]
            scores[key] = {"accuracy": accuracy, "ratio": round(accuracy / against, 4) if against else None}
        points.append({"fraction": fraction, "images": len(subset), "classifiers": scores})
    return {"synthetic": config.uri, "real_test": config.real, "real_train": real.train_source, "seed": seed,
            "real_accuracy": reference, "sizes": points}


def format_curve(curve: dict[str, Any]) -> str:
    """The curve for people: one line per size."""
    keys = list(curve["real_accuracy"])
    lines = [f"synthetic: {curve['synthetic']}, real test: {curve['real_test']}, "
             f"subsets seed {curve['seed']}",
             f"{'size':>6} {'images':>8}" + "".join(f"{k[:22]:>26}" for k in keys)]
    for point in curve["sizes"]:
        cells = ""
        for key in keys:
            scored = point["classifiers"][key]
            ratio = "" if scored["ratio"] is None else f" ({scored['ratio']:.3f})"
            cells += f"{scored['accuracy']:.4f}{ratio}".rjust(26)
        lines.append(f"{point['fraction']:>6g} {point['images']:>8}{cells}")
    real = "   ".join(f"{k} {v:.4f}" for k, v in curve["real_accuracy"].items() if v is not None)
    lines.append(f"real-trained: {real}" if real else "real-trained: none (give --train-real for the ratio)")
    return "\n".join(lines)
