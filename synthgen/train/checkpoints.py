"""Checkpoints: written atomically, pruned to the newest few, and restored exactly."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import UNet2DModel

from synthgen.errors import UserError
from synthgen.train.config import TrainConfig

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainState:
    """What a checkpoint restores: the live model, its EMA, the optimizer and the step."""

    unet: UNet2DModel
    ema: UNet2DModel
    optimizer: torch.optim.Optimizer
    step: int = 0
    losses: list[float] = field(default_factory=list)


def save_checkpoint(config: TrainConfig, state: TrainState) -> Path:
    """Write atomically (temp file + rename), then prune all but the newest few."""
    folder = config.output / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{state.step:08d}.pt"
    payload = {
        "step": state.step,
        "unet": state.unet.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "unet_config": dict(state.unet.config),
        "config": config.to_json(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    for old in sorted(folder.glob("step-*.pt"))[: -max(1, config.keep_checkpoints)]:
        old.unlink()
    log(f"checkpoint {path}")
    return path


def find_checkpoint(path: Path) -> Path:
    """Accept a checkpoint file, a checkpoints folder, or a training output folder."""
    if path.is_file():
        return path
    for folder in (path, path / CHECKPOINT_DIR):
        found = sorted(folder.glob("step-*.pt"))
        if found:
            return found[-1]
    raise UserError("resume_from", str(path), "point it at a step-*.pt checkpoint or its folder")


def load_checkpoint(state: TrainState, path: Path, device: torch.device) -> None:
    payload = torch.load(path, map_location=device, weights_only=True)
    if payload["unet_config"]["num_class_embeds"] != state.unet.config.num_class_embeds:
        raise UserError("resume_from", str(path), "its classes differ from this source's")
    state.unet.load_state_dict(payload["unet"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step = int(payload["step"])


# Training reports go to stderr, line by line, so that a long run shows its progress.
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
