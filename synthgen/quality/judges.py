"""The filter's torch classifiers (see quality/filter.py for the kinds), loaded in workers only.

Kept apart from filter.py so that the driver, which checks filter settings but never runs a
classifier, does not import torch.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import cross_val_predict
from sklearn.svm import SVC
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    CLIPModel,
    CLIPProcessor,
)

from synthgen.errors import UserError
from synthgen.inputs.builtin import BUILTIN_DIGITS
from synthgen.quality.features import DIGITS_SPACE, load_labeled


def _tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [0, 1] on `device`."""
    return torch.tensor(np.asarray(pixels), device=device).permute(0, 3, 1, 2).float() / 255.0


def _pils(pixels: np.ndarray, channels: int) -> list[Image.Image]:
    mode = "L" if channels == 1 else "RGB"
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p).convert(mode) for p in pixels]


def load_torch_module(file: Path, device: torch.device, trusted: bool) -> Any:
    """TorchScript, whose loader builds only TorchScript types, never a pickled class's code;
    a module saved whole with torch.save (full unpickling runs code) only when trusted. An
    untrusted file that is not TorchScript is refused: never a fallback to unpickling."""
    try:
        return torch.jit.load(str(file), map_location=device)
    except RuntimeError as exc:
        if not trusted:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise UserError("filter.trusted", False, f"{file} is not a TorchScript archive ({reason}); "
                            "export it with torch.jit.save, or set filter.trusted: true if you "
                            "trust where it came from") from None
    return torch.load(file, map_location=device, weights_only=False)


class TorchJudge:
    def __init__(self, path: Path, device: torch.device, trusted: bool) -> None:
        file = path / "model.pt" if path.is_dir() else path
        self.device = device
        self.module = load_torch_module(file, device, trusted)
        self.module.eval()

    @torch.inference_mode()
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        logits = self.module(_tensor(pixels, self.device))
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


class TransformersJudge:
    def __init__(self, path: Path, device: torch.device) -> None:
        self.device = device
        self.model = AutoModelForImageClassification.from_pretrained(path).to(device).eval()
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.channels = getattr(self.model.config, "num_channels", 3)

    @torch.inference_mode()
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=_pils(pixels, self.channels), return_tensors="pt").to(self.device)
        return torch.softmax(self.model(**inputs).logits.float(), dim=1).cpu().numpy()


class TimmJudge:
    """timm's own preprocessing constants (input size, mean, std), applied with torch ops."""

    def __init__(self, path: Path, device: torch.device) -> None:
        import timm  # optional: only where it is installed (quality/classifiers.py checks)
        from timm.data import resolve_data_config

        self.device = device
        self.model = timm.create_model(f"local-dir:{path}", pretrained=True).to(device).eval()
        config = resolve_data_config({}, model=self.model)
        self.size = tuple(config["input_size"][1:])
        self.channels = int(config["input_size"][0])
        self.mean = torch.tensor(config["mean"], device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(config["std"], device=device).view(1, -1, 1, 1)

    @torch.inference_mode()
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        x = _tensor(pixels, self.device)
        x = x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x
        x = torch.nn.functional.interpolate(x, size=self.size, mode="bicubic", antialias=True)
        logits = self.model((x.clamp(0, 1) - self.mean) / self.std)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


class ClipJudge:
    """Zero-shot: softmax over the job's classes of the scaled image-text cosine similarity."""

    def __init__(self, path: Path, device: torch.device, prompt: str, class_names: tuple[str, ...]) -> None:
        self.device = device
        model: Any = CLIPModel.from_pretrained(path)  # transformers types .to() too loosely to check
        self.model = model.to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(path)
        texts = [prompt.format(name=name) for name in class_names]
        with torch.inference_mode():
            tokens = self.processor(text=texts, return_tensors="pt", padding=True).to(device)
            self.text = _unit(_embedding(self.model.get_text_features(**tokens)))

    @torch.inference_mode()
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=_pils(pixels, 3), return_tensors="pt").to(self.device)
        image = _unit(_embedding(self.model.get_image_features(**inputs)))
        logits = self.model.logit_scale.exp() * image @ self.text.T
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _embedding(out: Any) -> torch.Tensor:
    """transformers 4 returns the projected features, 5 an output whose pooler_output holds them."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# The built-in digits classifier: an RBF SVM on the real training digits (see quality/filter.py).
def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DigitsJudge:
    """The built-in digits classifier (see the module docstring)."""

    def __init__(self) -> None:
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
def digits_judge() -> DigitsJudge:
    return DigitsJudge()
