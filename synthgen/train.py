"""Train small class-conditional diffusion models, such as the built-in `builtin:digits`.

The result is a DDPMPipeline-style folder that synthgen's generator loads like any diffusers
model, plus `synthgen.json` (class names, the null class used for classifier-free guidance,
recommended sampler settings, provenance).

CLI (each option maps one-to-one onto a `TrainConfig` field; `cli.py` wires them up):

    synthgen train --source builtin:digits|IMAGE_DIR|DATASET.parquet|SYNTHGEN_OUTPUT_DIR
        --output DIR [--steps N | --epochs N] [--batch-size 128] [--lr 2e-3]
        [--warmup-steps 200] [--ema-decay 0.999] [--cond-dropout 0.1]
        [--image-size 8] [--channels 1|3] [--block-out-channels 32,64,64]
        [--layers-per-block 1] [--beta-schedule squaredcos_cap_v2]
        [--prediction-type epsilon] [--seed 0] [--limit N] [--log-every 100]
        [--checkpoint-every 1000] [--keep-checkpoints 2] [--resume-from CKPT_OR_DIR]
        [--device auto|cpu|cuda] [--threads N]

Reproduce the shipped model (two stages, as it was trained: 3,000 steps predicting noise, then
v-prediction resumed from that checkpoint up to step 6,000; about 25 minutes on 2 CPU cores):

    synthgen train --source builtin:digits --output /tmp/digits-stage1 --steps 3000 --threads 1 \
        --prediction-type epsilon
    synthgen train --source builtin:digits --output synthgen/models/builtin/digits --steps 6000 \
        --threads 1 --prediction-type v_prediction \
        --resume-from /tmp/digits-stage1/checkpoints/step-00003000.pt
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from inspect import signature
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UNet2DModel,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image

from synthgen.errors import UserError
from synthgen.malloc import keep_freed_memory
from synthgen.models.loader import pick_device
from synthgen.train_data import BUILTIN_DIGITS, LabeledImages, load_source

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "dpm++": DPMSolverMultistepScheduler,
    "euler": EulerDiscreteScheduler,
    "euler-a": EulerAncestralDiscreteScheduler,
    "unipc": UniPCMultistepScheduler,
}
DIGITS_LICENSE = (
    "Weights: Apache-2.0. Trained on the UCI ML hand-written digits data (CC BY 4.0) "
    "as bundled with scikit-learn (load_digits, index < 1200 only)."
)
CHECKPOINT_DIR = "checkpoints"
GRID_FILE = "samples.png"


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in checkpoints and in synthgen.json."""

    source: str = BUILTIN_DIGITS
    output: Path = Path("out/model")
    steps: int = 12000
    epochs: int | None = None  # when set, overrides steps (rounded up to whole batches)
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.1  # labels replaced by the null class, for classifier-free guidance
    image_size: int | None = None  # None: the source's size (8 for builtin:digits)
    channels: int | None = None  # None: 1 if every image is grayscale, else 3
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    seed: int = 0
    limit: int | None = None  # first N samples only, e.g. to keep a validation split
    log_every: int = 100
    checkpoint_every: int = 1000  # 0: no checkpoints
    keep_checkpoints: int = 2
    resume_from: Path | None = None  # a checkpoint file, or a folder holding checkpoints
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    sample_scheduler: str = "dpm++"  # recommended sampler, used for the grid and synthgen.json
    sample_steps: int = 10
    guidance_scale: float = 1.5
    license: str | None = None  # None: the built-in license for builtin:digits, else "unknown"

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.resume_from = Path(self.resume_from) if self.resume_from else None
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        if self.sample_scheduler not in SCHEDULERS:
            raise UserError("sample_scheduler", self.sample_scheduler, f"use one of {SCHEDULERS}")
        if self.steps < 0 or self.batch_size < 1:
            raise UserError("steps", (self.steps, self.batch_size), "use positive sizes")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


@dataclass
class TrainState:
    """What a checkpoint restores: the live model, its EMA, the optimizer and the step."""

    unet: UNet2DModel
    ema: UNet2DModel
    optimizer: torch.optim.Optimizer
    step: int = 0
    losses: list[float] = field(default_factory=list)


def train(config: TrainConfig) -> Path:
    """Train, checkpoint, save the EMA model and a sample grid; return the model folder."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    keep_freed_memory(device)
    data = load_source(config.source, config.image_size, config.channels, config.limit)
    total = _total_steps(config, len(data))
    noise = make_noise_scheduler(config)
    state = _new_state(config, data, device)
    if config.resume_from:
        _load_checkpoint(state, _find_checkpoint(config.resume_from), device)
        _log(f"resumed from step {state.step}")
    _log(f"training on {len(data)} images ({data.description}), {total} steps, device {device}")
    _run_steps(config, state, data, noise, total, device)
    timing = {
        "wall_time_s": round(time.perf_counter() - started, 1),
        "cpu_time_s": round(time.process_time() - cpu_started, 1),  # honest on a busy machine
    }
    out = _save_model(config, state.ema, noise, data, total, timing)
    save_sample_grid(state.ema, out, data.class_names, config)
    _log(f"saved {out}")
    return out


def build_unet(config: TrainConfig, num_classes: int, channels: int, size: int) -> UNet2DModel:
    """A UNet without attention in the down/up path: at 8x8 convolutions carry the spatial work,
    and one attention layer in the 2x2 mid block is enough (keeps CPU sampling fast)."""
    levels = len(config.block_out_channels)
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=config.layers_per_block,
        block_out_channels=config.block_out_channels,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        norm_num_groups=config.norm_num_groups,
        attention_head_dim=min(32, config.block_out_channels[-1]),
        num_class_embeds=num_classes + 1,
    )


def make_noise_scheduler(config: TrainConfig) -> DDPMScheduler:
    """The training schedule; saved so that every sampler derives its own via `from_config`.

    `trailing` spacing makes few-step samplers start at the last (pure-noise) timestep.
    """
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        timestep_spacing="trailing",
        clip_sample=True,
    )


def _total_steps(config: TrainConfig, n: int) -> int:
    if config.epochs is None:
        return config.steps
    return math.ceil(config.epochs * n / config.batch_size)


def _new_state(config: TrainConfig, data: LabeledImages, device: torch.device) -> TrainState:
    torch.manual_seed(config.seed)
    _, channels, size, _ = data.images.shape
    unet = build_unet(config, len(data.class_names), channels, size).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return TrainState(unet=unet, ema=ema, optimizer=optimizer)


def _run_steps(
    config: TrainConfig,
    state: TrainState,
    data: LabeledImages,
    noise: DDPMScheduler,
    total: int,
    device: torch.device,
) -> None:
    images, labels = data.images.to(device), data.labels.to(device)
    null_class = len(data.class_names)
    tick, tick_step = time.perf_counter(), state.step
    state.unet.train()
    while state.step < total:
        index = batch_indices(len(data), config.batch_size, state.step, config.seed).to(device)
        loss = _train_step(config, state, images[index], labels[index], noise, null_class, total)
        state.losses.append(loss)
        state.step += 1
        if config.log_every and (state.step % config.log_every == 0 or state.step == total):
            rate = (state.step - tick_step) / (time.perf_counter() - tick)
            _log(
                f"step {state.step}/{total}  loss {np.mean(state.losses):.4f}  "
                f"lr {_lr(config, state.step, total):.2e}  {rate:.1f} steps/s"
            )
            state.losses.clear()
            tick, tick_step = time.perf_counter(), state.step
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            _save_checkpoint(config, state)


def _train_step(
    config: TrainConfig,
    state: TrainState,
    x0: torch.Tensor,
    labels: torch.Tensor,
    noise: DDPMScheduler,
    null_class: int,
    total: int,
) -> float:
    """One denoising-loss step. Randomness is seeded by (seed, step), so a resumed run draws
    exactly what the uninterrupted run would have drawn."""
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + state.step)
    eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    t = torch.randint(0, config.num_train_timesteps, (x0.shape[0],), generator=gen)
    drop = torch.rand(x0.shape[0], generator=gen) < config.cond_dropout
    t, drop = t.to(x0.device), drop.to(x0.device)
    labels = torch.where(drop, torch.full_like(labels, null_class), labels)
    xt = noise.add_noise(x0, eps, t)
    target = eps if config.prediction_type == "epsilon" else noise.get_velocity(x0, eps, t)
    pred = state.unet(xt, t, class_labels=labels).sample
    loss = F.mse_loss(pred, target)
    for group in state.optimizer.param_groups:
        group["lr"] = _lr(config, state.step, total)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.unet.parameters(), 1.0)
    state.optimizer.step()
    _update_ema(state.ema, state.unet, config.ema_decay, state.step)
    return loss.item()


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Batch `step` of an endless stream of per-epoch shuffles: a pure function of its inputs,
    so resuming needs no sampler state, and datasets smaller than a batch still work."""
    positions = torch.arange(step * batch_size, (step + 1) * batch_size)
    epochs, offsets = positions // n, positions % n
    out = torch.empty(batch_size, dtype=torch.long)
    for epoch in epochs.unique().tolist():
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        mask = epochs == epoch
        out[mask] = perm[offsets[mask]]
    return out


def _lr(config: TrainConfig, step: int, total: int) -> float:
    """Linear warmup, then cosine decay to 5% of the peak: the EMA then averages a settled model."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """EMA with the usual warmup, so early averages are not dominated by the random init."""
    decay = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)


def _save_checkpoint(config: TrainConfig, state: TrainState) -> Path:
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
    _log(f"checkpoint {path}")
    return path


def _find_checkpoint(path: Path) -> Path:
    """Accept a checkpoint file, a checkpoints folder, or a training output folder."""
    if path.is_file():
        return path
    for folder in (path, path / CHECKPOINT_DIR):
        found = sorted(folder.glob("step-*.pt"))
        if found:
            return found[-1]
    raise UserError("resume_from", str(path), "point it at a step-*.pt checkpoint or its folder")


def _load_checkpoint(state: TrainState, path: Path, device: torch.device) -> None:
    payload = torch.load(path, map_location=device, weights_only=True)
    if payload["unet_config"]["num_class_embeds"] != state.unet.config.num_class_embeds:
        raise UserError("resume_from", str(path), "its classes differ from this source's")
    state.unet.load_state_dict(payload["unet"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.step = int(payload["step"])


def _save_model(
    config: TrainConfig,
    ema: UNet2DModel,
    noise: DDPMScheduler,
    data: LabeledImages,
    total: int,
    timing: dict[str, float],
) -> Path:
    """DDPMPipeline layout (model_index.json, unet/, scheduler/) plus synthgen.json."""
    out = config.output
    ema = ema.to("cpu").eval()
    DDPMPipeline(unet=ema, scheduler=noise).save_pretrained(out, safe_serialization=True)
    meta = {
        "id2label": {str(i): name for i, name in enumerate(data.class_names)},
        "null_class": len(data.class_names),
        "license": config.license or _default_license(config),
        "value_range": [-1, 1],
        "sampler": {
            "scheduler": config.sample_scheduler,
            "steps": config.sample_steps,
            "guidance_scale": config.guidance_scale,
        },
        "training": {
            "command": cli_command(config),
            "steps": total,
            "data": data.description,
            "num_images": len(data),
            **timing,
            "torch": torch.__version__,
            "config": config.to_json(),
        },
    }
    (out / "synthgen.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _default_license(config: TrainConfig) -> str:
    return DIGITS_LICENSE if config.source == BUILTIN_DIGITS else "unknown"


def cli_command(config: TrainConfig) -> str:
    """The `synthgen train` command line that reproduces this config (non-default fields)."""
    defaults = TrainConfig()
    parts = ["synthgen train", f"--source {config.source}", f"--output {config.output}"]
    skip = {"source", "output", "steps", "resume_from", "log_every", "keep_checkpoints"}
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name in skip or value == getattr(defaults, f.name) or value is None:
            continue
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        parts.append(f"--{f.name.replace('_', '-')} {value}")
    if config.epochs is None:
        parts.insert(3, f"--steps {config.steps}")
    return " ".join(parts)


@torch.no_grad()
def sample(
    unet: UNet2DModel,
    scheduler_config: dict[str, Any],
    labels: list[int],
    null_class: int,
    scheduler: str = "dpm++",
    steps: int = 10,
    guidance_scale: float = 1.5,
    seed: int = 0,
) -> np.ndarray:
    """Sample uint8 images [N, H, W, C] exactly as synthgen's generator does (CFG, one noise
    generator per sample, [-1, 1] decoding); used for the grid and for quick checks."""
    sched = SCHEDULERS[scheduler].from_config(scheduler_config)
    sched.set_timesteps(steps)
    device = unet.device
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(labels))]
    noise = [torch.randn(shape, generator=g) for g in gens]
    x = torch.stack(noise).to(device) * sched.init_noise_sigma
    cond = torch.tensor(labels, dtype=torch.long, device=device)
    both = torch.cat([cond, torch.full_like(cond, null_class)])
    step_gen = torch.Generator().manual_seed(seed)
    # Stochastic samplers (ddpm, euler-a) take a generator; others (unipc) reject the keyword.
    kwargs = {"generator": step_gen} if "generator" in signature(sched.step).parameters else {}
    for t in sched.timesteps:
        xin = sched.scale_model_input(x, t)
        out = unet(torch.cat([xin, xin]), t, class_labels=both).sample
        eps_cond, eps_uncond = out.chunk(2)
        eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        x = sched.step(eps, t, x, **kwargs).prev_sample
    pixels = ((x.clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def save_sample_grid(
    unet: UNet2DModel, out: Path, class_names: list[str], config: TrainConfig, per_class: int = 10
) -> Path:
    """One row per class (up to 20 rows), upscaled with nearest so 8x8 digits are visible."""
    rows = min(len(class_names), 20)
    labels = [c for c in range(rows) for _ in range(per_class)]
    scheduler_config = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    pixels = sample(
        unet.eval(),
        scheduler_config,
        labels,
        len(class_names),
        config.sample_scheduler,
        config.sample_steps,
        config.guidance_scale,
        config.seed,
    )
    n, h, w, c = pixels.shape
    grid = pixels.reshape(rows, per_class, h, w, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * h, per_class * w, c)
    image = Image.fromarray(grid[..., 0] if c == 1 else grid)
    scale = max(1, 32 // max(h, w))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path = out / GRID_FILE
    image.save(path)
    return path


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
