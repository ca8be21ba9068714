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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from synthgen.quality.classifiers import class_targets, inspect_classifier
from synthgen.spec.job_spec import FilterSpec

if TYPE_CHECKING:
    import torch


class FilterRejected(RuntimeError):
    """A sample was rejected in every one of its draws: its shard fails."""


@dataclass(frozen=True)
class Verdict:
    accepted: np.ndarray  # bool [N]
    scores: np.ndarray  # float [N]: the probability of each sample's own class
    predicted: list[str]  # the classifier's top class per image, for messages


class Judge(Protocol):
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 images [N, H, W, C] -> class probabilities [N, K] (the classifier's classes)."""
        ...


class LabelFilter:
    """One loaded classifier and the rule; `judge` decides a batch."""

    def __init__(self, spec: FilterSpec, judge: Judge, targets: np.ndarray,
                 names: tuple[str, ...] | None) -> None:
        self.spec, self.model, self.targets, self.names = spec, judge, targets, names

    @classmethod
    def load(cls, spec: FilterSpec, class_names: tuple[str, ...], device: torch.device) -> LabelFilter:
        # torch and scikit-learn only where a filter is set: a worker without one never loads them
        from synthgen.quality.judges import ClipJudge, TimmJudge, TorchJudge, TransformersJudge, digits_judge


        info = inspect_classifier(spec)
        targets = class_targets(info, class_names)
        names = info.names or class_names
        if info.path is None:  # the builtin judge: the only one that is not a model folder
            return cls(spec, digits_judge(), targets, names)
        path = info.path
        loaders: dict[str, Callable[[], Judge]] = {
            "torch": lambda: TorchJudge(path, device, spec.trusted), "timm": lambda: TimmJudge(path, device),
            "transformers": lambda: TransformersJudge(path, device),
            "clip": lambda: ClipJudge(path, device, spec.prompt, class_names)}
        return cls(spec, loaders[info.kind](), targets, names)

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
