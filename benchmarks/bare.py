"""(a) The ceiling: the bare reverse loop, in-process, model calls only, no I/O.

Run as a whole process (`python -m benchmarks.bare CONFIG [--dump FILE]`): it imports torch and
diffusers, loads the model, and runs exactly synthgen's batches over exactly synthgen's noise
(the per-sample seeds of `synthgen.spec.plan.sample_seed`), so its pixels equal synthgen's. It imports
nothing of synthgen, so that the ceiling pays no cost of ours. Prints one JSON line of timings.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import DDIMScheduler, UNet2DModel  # noqa: E402

from benchmarks.config import BenchConfig  # noqa: E402


def sample_seed(job_seed: int, sample_id: int) -> int:
    """synthgen.spec.plan.sample_seed, restated (a test checks they agree)."""
    digest = hashlib.blake2b(f"{job_seed}:{sample_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@torch.inference_mode()
def generate(unet: UNet2DModel, scheduler_config: dict, cfg: BenchConfig, ids: range) -> np.ndarray:
    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(cfg.steps)
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    generators = [torch.Generator().manual_seed(sample_seed(cfg.seed, i)) for i in ids]
    latents = torch.stack([torch.randn(shape, generator=g) for g in generators])
    latents = latents * scheduler.init_noise_sigma
    labels = torch.tensor([cfg.label(i) for i in ids])
    for t in scheduler.timesteps:
        pred = unet(scheduler.scale_model_input(latents, t), t, class_labels=labels).sample
        latents = scheduler.step(pred, t, latents, eta=0.0, generator=generators).prev_sample
    return ((latents.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def main(config: str, dump: str | None = None) -> dict[str, float]:
    imported = time.perf_counter()
    cfg = BenchConfig.load(config)
    torch.set_num_threads(cfg.threads)
    unet = UNet2DModel.from_pretrained(Path(cfg.model) / "unet").eval()
    scheduler_config = DDIMScheduler.load_config(Path(cfg.model) / "scheduler")
    loaded = time.perf_counter()
    images = [generate(unet, scheduler_config, cfg, ids) for ids in cfg.batches()]
    done = time.perf_counter()
    if dump:
        np.save(dump, np.concatenate(images))
    return {"images": cfg.total, "import_s": imported - START, "load_s": loaded - imported,
            "loop_s": done - loaded, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[3] if sys.argv[2:3] == ["--dump"] else None)))
