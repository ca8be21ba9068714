"""`synthgen eval`: the Classification Accuracy Score (CAS, Ravuri & Vinyals 2019) of a dataset.

Two classifiers are trained on the synthetic images alone and tested on real held-out images:
a logistic regression (`LogisticRegression(max_iter=5000)`) and an RBF SVM (`SVC()`), scikit-learn
defaults otherwise. The same classifiers trained on real training images give the reference, and
CAS / real accuracy is the ratio that says how much of real data's value the synthetic set keeps.
With real training data, a third training on real + synthetic answers "does it help?": its
accuracy and its ratio to real only (above 1: the synthetic images help).

Features (quality/features.py): for `--real builtin:digits`, the digits' own 8x8 gray 0..16
space (real test = load_digits index >= 1200, real train = index < 1200); for other real data,
16x16 RGB pixels on 0..1, standardized (scaler fitted on the training side). The report also
gives per-class accuracy, the confusion matrix and per-class diversity (output/diversity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from synthgen.errors import UserError
from synthgen.output import diversity
from synthgen.quality.features import FeatureSpace, Labeled, load_labeled, real_train_source, space_for

CLASSIFIERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "logistic_regression": ("LogisticRegression(max_iter=5000)", lambda: LogisticRegression(max_iter=5000)),
    "svm_rbf": ("SVC() (RBF kernel)", SVC),
}


MAX_MATRIX_CLASSES = 20  # a wider confusion matrix is listed as its top confusions


@dataclass(frozen=True)
class EvalConfig:
    uri: str  # the synthetic dataset: a synthgen output, a Parquet dataset or an image folder
    real: str  # the real test set
    real_train: str | None = None  # default: the digits' training split for builtin:digits
    max_per_class: int | None = None  # synthetic images per class at most (the first ones)
    split: str | None = None  # one of a synthgen output's splits (default: all)
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RealSets:
    """The real test set and, where there is one, the real training set, in one feature space:
    loaded, and each real-only classifier fitted, once for every synthetic set scored against
    them (a sweep's cells, the subsets of `--sizes`)."""

    space: FeatureSpace
    test: Labeled
    train: Labeled | None
    train_source: str | None
    fitted: dict[str, float] = field(default_factory=dict)  # classifier key -> real-only accuracy

    def real_only(self, key: str) -> float | None:
        """Classifier `key`'s accuracy trained on the real training set (None without one)."""
        if self.train is None:
            return None
        if key not in self.fitted:
            self.fitted[key] = accuracy_on_real(key, self.train, self)
        return self.fitted[key]


def load_real(real: str, real_train: str | None, storage_options: dict[str, Any]) -> RealSets:
    """The real sets of `--real` and `--train-real` (the digits' training split by default)."""
    space = space_for(real)
    test = load_labeled(real, space, "test", storage_options=storage_options)
    train_source = real_train or real_train_source(real)
    train = (load_labeled(train_source, space, "train", storage_options=storage_options).relabel(test)
             if train_source else None)
    return RealSets(space, test, train, train_source)


def evaluate(config: EvalConfig, real: RealSets | None = None) -> dict[str, Any]:
    """The whole report as a JSON-ready dict; `real`: the real sets, if already loaded."""
    if real is None:
        real = load_real(config.real, config.real_train, config.storage_options)
    space, test = real.space, real.test
    names = test.class_names
    synthetic = load_labeled(config.uri, space, "data", config.max_per_class, config.storage_options,
                             config.split).relabel(test)
    present = set(np.unique(synthetic.labels).tolist())
    if len(present) < 2:
        raise UserError("URI", config.uri, "it holds fewer than two of the real data's classes; "
                                           "a classifier needs at least two")
    return {
        "synthetic": _describe(synthetic),
        "real_test": _describe(test),
        "real_train": _describe(real.train) if real.train else None,
        "features": space.describe(),
        "classes": list(names),
        "missing_classes": [n for i, n in enumerate(names) if i not in present],
        "classifiers": {key: _score(key, synthetic, real) for key in CLASSIFIERS},
        "diversity": {
            "near_duplicate_distance": diversity.NEAR_DUPLICATE,
            "synthetic": _diversity(synthetic, space),
            "real_test": _diversity(test, space),
        },
    }


def _describe(data: Labeled) -> dict[str, Any]:
    return {"source": data.source, "images": len(data), "per_class": data.counts()}


def _fit_predict(make: Callable[[], Any], train: Labeled, test: Labeled, space: FeatureSpace) -> np.ndarray:
    model = make()
    if space.standardize:
        model = make_pipeline(StandardScaler(), model)
    model.fit(train.features, train.labels)
    return model.predict(test.features)


def accuracy_on_real(key: str, train: Labeled, real: RealSets) -> float:
    """Classifier `key` trained on `train`, its accuracy on the real test set."""
    return float((_fit_predict(CLASSIFIERS[key][1], train, real.test, real.space) == real.test.labels).mean())


def _score(key: str, synthetic: Labeled, real: RealSets) -> dict[str, Any]:
    label, make = CLASSIFIERS[key]
    test = real.test
    predicted = _fit_predict(make, synthetic, test, real.space)
    k = len(test.class_names)
    confusion = confusion_matrix(test.labels, predicted, labels=list(range(k)))
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    accuracy = float((predicted == test.labels).mean())
    result: dict[str, Any] = {
        "classifier": label,
        "accuracy": round(accuracy, 4),
        "per_class_accuracy": {n: round(float(a), 4)
                               for n, a in zip(test.class_names, per_class, strict=True)},
        "confusion_matrix": confusion.tolist(),
        "real_accuracy": None,
        "ratio": None,
        "real_plus_synthetic_accuracy": None,
        "real_plus_synthetic_ratio": None,
    }
    if real.train is not None and (real_only := real.real_only(key)) is not None:
        both = Labeled(np.concatenate([real.train.features, synthetic.features]),
                       np.concatenate([real.train.labels, synthetic.labels]), test.class_names, "both")
        mixed = accuracy_on_real(key, both, real)
        result.update(real_accuracy=round(real_only, 4),
                      ratio=round(accuracy / real_only, 4) if real_only else None,
                      real_plus_synthetic_accuracy=round(mixed, 4),
                      real_plus_synthetic_ratio=round(mixed / real_only, 4) if real_only else None)
    return result


def _diversity(data: Labeled, space: FeatureSpace) -> dict[str, Any]:
    stats = diversity.per_class(data.features / space.scale, data.labels)
    return {data.class_names[label]: s.summary() for label, s in stats.items()}


def format_report(report: dict[str, Any]) -> str:
    """The report for people: accuracy and ratio per classifier, then a table per class."""
    names = report["classes"]
    real_train = report["real_train"]
    lines = [f"synthetic: {report['synthetic']['source']} ({report['synthetic']['images']} images)",
             f"real test: {report['real_test']['source']} ({report['real_test']['images']} images)",
             f"real train: {real_train['source']} ({real_train['images']} images)" if real_train
             else "real train: none (give --train-real for real-only and real + synthetic accuracy)",
             f"features: {report['features']}", ""]
    lines.append(f"{'accuracy on the real test set':<36} {'real only':>10} {'synthetic':>18} "
                 f"{'real + synthetic':>18}")
    for r in report["classifiers"].values():
        lines.append(f"{r['classifier']:<36} {_num(r['real_accuracy'], 4):>10} "
                     f"{_with_ratio(r['accuracy'], r['ratio']):>18} "
                     f"{_with_ratio(r['real_plus_synthetic_accuracy'], r['real_plus_synthetic_ratio']):>18}")
    if real_train:
        lines.append("(x N: the ratio to real only; synthetic alone is the CAS)")
    if report["missing_classes"]:
        lines.append(f"classes with no synthetic image: {', '.join(report['missing_classes'])}")
    keys = list(report["classifiers"])
    div_syn, div_real = report["diversity"]["synthetic"], report["diversity"]["real_test"]
    first = max(len("class"), *(len(n) for n in names)) + 2
    widths = [max(len(k), 5) + 2 for k in keys]
    lines += ["", "per-class accuracy (on the real test set) and diversity (distance, near-duplicates):",
              f"{'class':<{first}}" + "".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True))
              + f"{'distance':>10}{'(real)':>8}{'near-dup':>10}"]
    for name in names:
        accs = "".join(f"{report['classifiers'][k]['per_class_accuracy'][name]:>{w}.3f}"
                       for k, w in zip(keys, widths, strict=True))
        syn, real = div_syn.get(name, {}), div_real.get(name, {})
        lines.append(f"{name:<{first}}{accs}{_num(syn.get('mean_distance')):>10}"
                     f"{_num(real.get('mean_distance')):>8}{_pct(syn.get('near_duplicate_fraction')):>10}")
    for result in report["classifiers"].values():
        lines += ["", *confusion_lines(names, result)]
    return "\n".join(lines)


def confusion_lines(names: list[str], result: dict[str, Any]) -> list[str]:
    """One classifier's confusion matrix: rows the real class, columns the predicted one. Past
    MAX_MATRIX_CLASSES classes, the most frequent confusions instead (--json has the matrix)."""
    matrix = np.array(result["confusion_matrix"])
    title = f"confusion matrix of {result['classifier']} (rows: real class, columns: predicted)"
    if len(names) > MAX_MATRIX_CLASSES:
        off = [(int(matrix[i, j]), names[i], names[j]) for i in range(len(names))
               for j in range(len(names)) if i != j and matrix[i, j]]
        top = sorted(off, key=lambda c: -c[0])[:MAX_MATRIX_CLASSES]
        return [f"most frequent confusions of {result['classifier']} (the full matrix: --json):",
                *[f"  {real} -> {predicted}: {n}" for n, real, predicted in top]]
    first = max(len("real"), *(len(n) for n in names)) + 2
    width = max(len(str(matrix.max())), *(len(n) for n in names)) + 2
    return [title, f"{'real':<{first}}" + "".join(f"{n:>{width}}" for n in names),
            *[f"{name:<{first}}" + "".join(f"{v:>{width}}" for v in row)
              for name, row in zip(names, matrix.tolist(), strict=True)]]


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _with_ratio(accuracy: float | None, ratio: float | None) -> str:
    return _num(accuracy, 4) + ("" if ratio is None else f" (x{ratio:.3f})")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
