"""Train small class-conditional diffusion models, such as the built-in `builtin:digits`.

The result is a DDPMPipeline-style folder that synthgen's generator loads like any diffusers
model, plus `synthgen.json` (class names, the null class used for classifier-free guidance,
recommended sampler settings, provenance).

CLI (each option maps one-to-one onto a `TrainConfig` field; cli/training.py wires them up):

    synthgen train --source builtin:digits|IMAGE_DIR|DATASET.parquet|SYNTHGEN_OUTPUT_DIR
        --output DIR [--steps N | --epochs N] [--batch-size 128] [--lr 2e-3]
        [--warmup-steps 200 (at most a tenth of the steps)] [--ema-decay 0.999] [--cond-dropout 0.1]
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
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from synthgen.models.runtime import keep_freed_memory, pick_device
from synthgen.train.checkpoints import TrainState, find_checkpoint, load_checkpoint, log, save_checkpoint
from synthgen.train.config import TrainConfig, resolve_warmup
from synthgen.train.data import LabeledImages, load_source
from synthgen.train.model_folder import build_unet, make_noise_scheduler, save_model, save_sample_grid


@dataclass(frozen=True)
class Run:
    """One training run's fixed parts: its config, noise schedule, length, null class, device."""

    config: TrainConfig
    noise: DDPMScheduler
    total: int
    null_class: int
    device: torch.device


def train(config: TrainConfig) -> Path:
    """Train, checkpoint, save the EMA model and a sample grid; return the model folder."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    keep_freed_memory(device)
    data = load_source(config.source, config.image_size, config.channels, config.limit)
    total = _total_steps(config, len(data))
    config = replace(config, warmup_steps=resolve_warmup(config, total))  # recorded as run
    noise = make_noise_scheduler(config)
    state = _new_state(config, data, device)
    if config.resume_from:
        load_checkpoint(state, find_checkpoint(config.resume_from), device)
        log(f"resumed from step {state.step}")
    log(f"training on {len(data)} images ({data.description}), {total} steps "
        f"({config.warmup_steps} warm-up), device {device}")
    _run_steps(Run(config, noise, total, len(data.class_names), device), state, data)
    timing = {
        "wall_time_s": round(time.perf_counter() - started, 1),
        "cpu_time_s": round(time.process_time() - cpu_started, 1),  # honest on a busy machine
    }
    out = save_model(config, state.ema, noise, data, total, timing)
    save_sample_grid(out, data.class_names, config)
    log(f"saved {out}")
    return out


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


def _run_steps(run: Run, state: TrainState, data: LabeledImages) -> None:
    config, total = run.config, run.total
    images, labels = data.images.to(run.device), data.labels.to(run.device)
    tick, tick_step = time.perf_counter(), state.step
    state.unet.train()
    while state.step < total:
        index = batch_indices(len(data), config.batch_size, state.step, config.seed).to(run.device)
        loss = _train_step(run, state, images[index], labels[index])
        state.losses.append(loss)
        state.step += 1
        if config.log_every and (state.step % config.log_every == 0 or state.step == total):
            rate = (state.step - tick_step) / (time.perf_counter() - tick)
            log(
                f"step {state.step}/{total}  loss {np.mean(state.losses):.4f}  "
                f"lr {_lr(config, state.step, total):.2e}  {rate:.1f} steps/s"
            )
            state.losses.clear()
            tick, tick_step = time.perf_counter(), state.step
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            save_checkpoint(config, state)


def _train_step(run: Run, state: TrainState, x0: torch.Tensor, labels: torch.Tensor) -> float:
    """One denoising-loss step. Randomness is seeded by (seed, step), so a resumed run draws
    exactly what the uninterrupted run would have drawn."""
    config, noise = run.config, run.noise
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + state.step)
    eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    t = torch.randint(0, config.num_train_timesteps, (x0.shape[0],), generator=gen)
    drop = torch.rand(x0.shape[0], generator=gen) < config.cond_dropout
    t, drop = t.to(x0.device), drop.to(x0.device)
    labels = torch.where(drop, torch.full_like(labels, run.null_class), labels)
    xt = noise.add_noise(x0, eps, t)
    target = eps if config.prediction_type == "epsilon" else noise.get_velocity(x0, eps, t)
    pred = state.unet(xt, t, class_labels=labels).sample
    loss = F.mse_loss(pred, target)
    for group in state.optimizer.param_groups:
        group["lr"] = _lr(config, state.step, run.total)
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
    warmup = resolve_warmup(config, total)  # train() resolved it: this is config.warmup_steps
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """EMA with the usual warmup, so early averages are not dominated by the random init."""
    decay = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
