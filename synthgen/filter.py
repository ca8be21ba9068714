"""The label-fidelity filter: a classifier judges every generated image against its label.

The rule: the classifier's top class must be the sample's class (`require_match`) and/or its
probability of the sample's class must reach `min_prob`. The worker draws a rejected sample
again with the seed `sample_seed(job seed, sample_id, draw)`, draw = 1, 2, ..., until it is
accepted; a sample still rejected after `max_draws` draws fails its shard.

Classifiers (`kind: auto` tells them apart by what the path holds), each loaded once per worker
on the worker's device:
- `builtin:digits`: an RBF SVM (scikit-learn defaults) fitted at load time on the real training
  digits only (load_digits index < 1200, 8x8 on the 0..16 scale); its probabilities are a softmax
  of the one-vs-rest decision values, with a temperature fitted by 3-fold cross-validation on the
  same split. Deterministic, well under a second.
- `torch`: a TorchScript file (`torch.jit.save`), a whole module saved with `torch.save` (trusted
  files only: that unpickles code), or a folder holding `model.pt`. It takes float32 images
  [N, C, H, W] in [0, 1] at the generated size and returns logits [N, K]. A `classes.json` beside
  it (a list of K names) matches outputs to classes by name; without it, output i is class i.
- `transformers`: a `save_pretrained` folder of an `AutoModelForImageClassification` with its
  `AutoImageProcessor`; classes by name from `config.id2label`.
- `timm`: a folder saved by timm (config.json naming its `architecture`), loaded with
  `timm.create_model("local-dir:PATH", pretrained=True)`; only where timm is installed.
- `clip`: a `CLIPModel` + `CLIPProcessor` folder, zero-shot over the job's classes with the text
  `prompt` ("a photo of a {name}").
A class name matches a classifier label exactly, ignoring case, or as one of its comma-separated
synonyms ("tench, Tinca tinca").
"""

from __future__ import annotations

import functools
import json
import re
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from synthgen import diversity
from synthgen.errors import UserError
from synthgen.plan import Sample, sample_seed

if TYPE_CHECKING:
    import torch

    from synthgen.plan import Plan
    from synthgen.spec import FilterSpec

BUILTIN_DIGITS = "builtin:digits"
TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
DEFAULT_LABEL = re.compile(r"LABEL_\d+")  # transformers' id2label when nobody named the classes


class FilterRejected(RuntimeError):
    """A sample was rejected in every one of its draws: its shard fails."""


@dataclass(frozen=True)
class ClassifierInfo:
    """What the classifier's files say, read without loading weights."""

    kind: str
    path: Path | None
    names: tuple[str, ...] | None  # None: output i is the job's class i


@dataclass(frozen=True)
class Verdict:
    accepted: np.ndarray  # bool [N]
    scores: np.ndarray  # float [N]: the probability of each sample's own class
    predicted: list[str]  # the classifier's top class per image, for messages


class Judge(Protocol):
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 images [N, H, W, C] -> class probabilities [N, K] (the classifier's classes)."""
        ...


# --- checks at plan time (configs only) ---

def check_filter(plan: Plan) -> None:
    """Every filter problem that shows without loading the classifier: one UserError line."""
    spec = plan.spec.filter
    if spec is None:
        return
    if any(entry.label < 0 or entry.label_name is None for entry in plan.manifest.entries):
        raise UserError("filter", spec.classifier, "the filter judges labels, and some prompts have none; "
                                                   "give every prompt a label, or remove the filter")
    info = inspect_classifier(spec)
    class_targets(info, plan.manifest.class_names)


def inspect_classifier(spec: FilterSpec) -> ClassifierInfo:
    if spec.classifier == BUILTIN_DIGITS:
        return ClassifierInfo("builtin", None, tuple(str(d) for d in range(10)))
    if spec.classifier.startswith("builtin:") or "://" in spec.classifier:
        raise UserError("filter.classifier", spec.classifier,
                        f"give {BUILTIN_DIGITS} or a local file or folder (copy remote classifiers to "
                        "every worker's disk, or bake them into the image)")
    path = Path(spec.classifier).expanduser()
    if not path.exists():
        raise UserError("filter.classifier", spec.classifier, "no such file or folder")
    kind = _detect_kind(path) if spec.kind == "auto" else spec.kind
    if kind == "timm" and not _has_timm():
        raise UserError("filter.kind", "timm", "timm is not installed here; `pip install timm`, or "
                                               "export the model with torch.jit.save and use kind: torch")
    return ClassifierInfo(kind, path, _names(kind, path))


def _detect_kind(path: Path) -> str:
    if path.is_file():
        if path.suffix in TORCH_SUFFIXES:
            return "torch"
        raise UserError("filter.classifier", str(path),
                        f"a classifier file must be a torch module ({', '.join(TORCH_SUFFIXES)})")
    if (path / "model.pt").is_file():
        return "torch"
    config = _config(path)
    if "architecture" in config:
        return "timm"
    if config.get("model_type") == "clip":
        return "clip"
    if "id2label" in config or "model_type" in config:
        return "transformers"
    raise UserError("filter.classifier", str(path), "holds no model.pt, nor a config.json naming a model")


def _config(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        raise UserError("filter.classifier", str(path), "has no config.json (nor model.pt)")
    return json.loads(file.read_text())


def _names(kind: str, path: Path) -> tuple[str, ...] | None:
    """The classifier's class names in output order, where its files give them."""
    if kind == "clip":
        return None
    if kind == "torch":
        file = (path if path.is_dir() else path.parent) / "classes.json"
        return tuple(json.loads(file.read_text())) if file.is_file() else None
    config = _config(path)
    if kind == "timm":
        labels = config.get("label_names") or config.get("pretrained_cfg", {}).get("label_names")
        if isinstance(labels, dict):
            labels = [labels[k] for k in sorted(labels, key=int)]
        described = config.get("label_descriptions") or {}
        return tuple(described.get(n, n) for n in labels) if labels else None
    id2label = config.get("id2label") or {}
    names = [id2label[k] for k in sorted(id2label, key=int)]
    return None if not names or all(DEFAULT_LABEL.fullmatch(n) for n in names) else tuple(names)


def class_targets(info: ClassifierInfo, class_names: tuple[str, ...]) -> np.ndarray:
    """For each job class, the classifier output that stands for it."""
    if info.names is None:
        return np.arange(len(class_names))
    targets = []
    for name in class_names:
        found = _match(name, info.names)
        if found is None:
            examples = ", ".join(repr(n) for n in info.names[:4])
            raise UserError("filter.classifier", str(info.path or BUILTIN_DIGITS),
                            f"its classes have no {name!r} (it knows {examples}...); use a classifier "
                            "trained on this job's classes, or name the classes as it does")
        targets.append(found)
    return np.array(targets)


def _match(name: str, names: tuple[str, ...]) -> int | None:
    folded = name.strip().lower()
    for exact in (True, False):
        for i, label in enumerate(names):
            options = [label] if exact else [s.strip().lower() for s in [label, *label.split(",")]]
            if (name if exact else folded) in options:
                return i
    return None


def _has_timm() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


# --- the filter a worker holds ---

class LabelFilter:
    """One loaded classifier and the rule; `judge` decides a batch."""

    def __init__(self, spec: FilterSpec, judge: Judge, targets: np.ndarray,
                 names: tuple[str, ...] | None) -> None:
        self.spec, self.model, self.targets, self.names = spec, judge, targets, names

    @classmethod
    def load(cls, spec: FilterSpec, class_names: tuple[str, ...], device: torch.device) -> LabelFilter:
        from synthgen.judges import ClipJudge, TimmJudge, TorchJudge, TransformersJudge

        info = inspect_classifier(spec)
        targets = class_targets(info, class_names)
        loaders = {"builtin": _digits_judge, "torch": lambda: TorchJudge(info.path, device),
                   "transformers": lambda: TransformersJudge(info.path, device),
                   "timm": lambda: TimmJudge(info.path, device),
                   "clip": lambda: ClipJudge(info.path, device, spec.prompt, class_names)}
        return cls(spec, loaders[info.kind](), targets, info.names or class_names)

    def judge(self, pixels: np.ndarray, labels: list[int]) -> Verdict:
        probs = np.asarray(self.model.probabilities(pixels), dtype=np.float64)
        targets = self.targets[np.asarray(labels)]
        if probs.ndim != 2 or probs.shape[1] <= targets.max():
            raise RuntimeError(f"filter.classifier {self.spec.classifier} returned scores of shape "
                               f"{tuple(probs.shape)}, too few for class index {targets.max()}; add "
                               "classes.json beside a torch module to map its outputs")
        scores = probs[np.arange(len(targets)), targets]
        top = probs.argmax(axis=1)
        accepted = np.ones(len(targets), dtype=bool)
        if self.spec.require_match:
            accepted &= top == targets
        if self.spec.min_prob is not None:
            accepted &= scores >= self.spec.min_prob
        names = self.names or ()
        predicted = [names[i] if i < len(names) else str(i) for i in top]
        return Verdict(accepted, scores, predicted)

    def rule(self) -> str:
        parts = ["the top class must be the label"] if self.spec.require_match else []
        if self.spec.min_prob is not None:
            parts.append(f"its probability must reach {self.spec.min_prob}")
        return " and ".join(parts)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DigitsJudge:
    """The built-in digits classifier (see the module docstring)."""

    def __init__(self) -> None:
        from sklearn.model_selection import cross_val_predict
        from sklearn.svm import SVC

        from synthgen.realdata import DIGITS_SPACE, load_labeled

        train = load_labeled(f"{BUILTIN_DIGITS}:train", DIGITS_SPACE)
        self.space = DIGITS_SPACE
        self.svc = SVC().fit(train.features, train.labels)
        held_out = cross_val_predict(SVC(), train.features, train.labels, cv=3, method="decision_function")
        self.temperature = _fit_temperature(held_out, train.labels)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        decision = self.svc.decision_function(self.space.features(pixels))
        return softmax(self.temperature * decision)


def _fit_temperature(decision: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature with the least held-out negative log-likelihood."""
    grid = np.geomspace(0.05, 50.0, 200)
    rows = np.arange(len(labels))
    nll = [-np.log(softmax(t * decision)[rows, labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


@functools.cache
def _digits_judge() -> DigitsJudge:
    return DigitsJudge()


# --- a shard's samples through their draws (the worker's bookkeeping) ---

class ShardDraws:
    """Which samples of a shard still need an image, and for each accepted one: its sample
    with the seed of the accepted draw (draw d: `sample_seed(job seed, sample_id, d)`), its
    encoded image, size, filter score, draw count and diversity features. Without a filter
    every first draw is accepted, and scores and draw counts stay None."""

    def __init__(self, samples: list[Sample], job_seed: int, label_filter: LabelFilter | None) -> None:
        n = len(samples)
        self.samples, self.job_seed, self.filter = samples, job_seed, label_filter
        self.chosen = list(samples)
        self.pending = list(range(n))
        self.taken = [False] * n
        self.scores: list[float | None] = [None] * n
        self.counts: list[int | None] = [None] * n
        self.best = [0.0] * n
        self.predicted = [""] * n
        self.sizes = [(0, 0)] * n
        self.features: list[np.ndarray | None] = [None] * n
        self.images: list[bytes] = []
        self.accepted = 0
        self._encoded: list[tuple[list[int], Future[list[bytes]]]] = []

    def todo(self, draw: int) -> list[tuple[int, Sample]]:
        """(position, sample with this draw's seed) for every sample still without an image."""
        seeds = [sample_seed(self.job_seed, self.samples[p].sample_id, draw) for p in self.pending]
        return [(p, replace(self.samples[p], seed=seed)) for p, seed in zip(self.pending, seeds, strict=True)]

    def record(self, batch: list[tuple[int, Sample]], pixels: np.ndarray, draw: int) -> np.ndarray:
        """Judge a generated batch; keep the accepted images' rows. Returns the accepted mask."""
        verdict = self.filter.judge(pixels, [s.label for _, s in batch]) if self.filter else None
        keep = verdict.accepted if verdict else np.ones(len(batch), dtype=bool)
        features = diversity.pixel_space(pixels.shape).features(pixels)
        for i, (p, sample) in enumerate(batch):
            if verdict is not None and verdict.scores[i] >= self.best[p]:
                self.best[p], self.predicted[p] = float(verdict.scores[i]), verdict.predicted[i]
            if not keep[i]:
                continue
            self.taken[p], self.chosen[p], self.features[p] = True, sample, features[i]
            self.sizes[p] = (pixels.shape[2], pixels.shape[1])
            if verdict is not None:
                self.scores[p], self.counts[p] = float(verdict.scores[i]), draw + 1
        self.accepted += int(keep.sum())
        return keep

    def encoding(self, batch: list[tuple[int, Sample]], keep: np.ndarray,
                 future: Future[list[bytes]]) -> None:
        self._encoded.append(([p for (p, _), k in zip(batch, keep, strict=True) if k], future))

    def end_draw(self) -> None:
        self.pending = [p for p in self.pending if not self.taken[p]]

    def collect(self) -> None:
        """Wait for the encoder; images in sample order."""
        images: list[bytes | None] = [None] * len(self.samples)
        for positions, future in self._encoded:
            for p, data in zip(positions, future.result(), strict=True):
                images[p] = data
        self.images = [b for b in images if b is not None]

    def failure(self, shard: int, max_draws: int) -> FilterRejected:
        """The error that fails the shard when samples were rejected in every draw."""
        p = self.pending[0]
        sample, rule = self.samples[p], self.filter.rule() if self.filter else ""
        return FilterRejected(
            f"shard {shard}: sample {sample.sample_id} (class {sample.label_name!r}) was rejected by the "
            f"filter in all {max_draws} draws ({rule}; its best probability was {self.best[p]:.3f}, the "
            f"classifier saw {self.predicted[p]!r}); {len(self.pending)} sample(s) of this shard failed. "
            "Raise filter.max_draws, lower filter.min_prob, or check that the model draws this class")

    def pair_stats(self) -> dict[int, diversity.PairStats]:
        labels = [s.label for s in self.chosen]
        return diversity.per_class(np.stack([f for f in self.features if f is not None]), labels)
