"""(c) What a user writes with diffusers alone: DDPMPipeline's loop, PNG files saved one by one.

DDPMPipeline takes no class labels, so this is its `__call__` written out with them: noise from
one generator per batch, the UNet and the scheduler step, `numpy_to_pil`, then `Image.save` per
image with PIL's defaults into one folder per class (the ImageFolder layout). Run as a whole
process: `python -m benchmarks.diffusers_loop CONFIG OUT_DIR`. Prints one JSON line of timings.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from diffusers import DDIMScheduler, DiffusionPipeline, UNet2DModel  # noqa: E402

from benchmarks.config import BenchConfig  # noqa: E402


def main(config: str, out: str) -> dict[str, float]:
    imported = time.perf_counter()
    cfg = BenchConfig.load(config)
    torch.set_num_threads(cfg.threads)
    unet = UNet2DModel.from_pretrained(Path(cfg.model) / "unet").eval()
    scheduler = DDIMScheduler.from_pretrained(Path(cfg.model) / "scheduler")
    loaded = time.perf_counter()
    for label in range(cfg.classes):
        (Path(out) / str(label)).mkdir(parents=True, exist_ok=True)
    size = unet.config.sample_size
    for ids in cfg.batches():
        generator = torch.manual_seed(cfg.seed + ids[0])
        image = torch.randn((len(ids), unet.config.in_channels, size, size), generator=generator)
        labels = torch.tensor([cfg.label(i) for i in ids])
        scheduler.set_timesteps(cfg.steps)
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_output = unet(image, t, class_labels=labels).sample
                image = scheduler.step(model_output, t, image, generator=generator).prev_sample
        pixels = (image / 2 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).numpy()
        for i, picture in zip(ids, DiffusionPipeline.numpy_to_pil(pixels), strict=True):
            picture.save(Path(out) / str(cfg.label(i)) / f"{i:07d}.png")
    return {"images": cfg.total, "import_s": imported - START, "load_s": loaded - imported,
            "loop_s": time.perf_counter() - loaded, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
