"""(c) Ray Data's batch-inference pattern: `map_batches` with an actor class, then `write_parquet`.

As the Ray documentation writes it: a callable class loads the model once in `__init__`, its
`__call__` turns a batch of sample ids into a batch of PNG-encoded images, one actor
(`concurrency=1`) with torch given all the cores, and Ray Data writes the Parquet files. Run as a
whole process on a local Ray started by `ray.init()`: `python -m benchmarks.ray_data CONFIG OUT_DIR`.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import ray  # noqa: E402

from benchmarks.config import BenchConfig  # noqa: E402


class Generator:
    """One model per actor; a batch of sample ids in, a batch of encoded images out."""

    def __init__(self, cfg: BenchConfig) -> None:
        import torch
        from diffusers import DDIMScheduler, UNet2DModel

        torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.unet = UNet2DModel.from_pretrained(Path(cfg.model) / "unet").eval()
        self.scheduler = DDIMScheduler.from_pretrained(Path(cfg.model) / "scheduler")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch
        from PIL import Image

        ids = batch["id"]
        size, channels = self.unet.config.sample_size, self.unet.config.in_channels
        generator = torch.manual_seed(self.cfg.seed + int(ids[0]))
        image = torch.randn((len(ids), channels, size, size), generator=generator)
        labels = torch.from_numpy(ids // self.cfg.per_class)
        self.scheduler.set_timesteps(self.cfg.steps)
        with torch.no_grad():
            for t in self.scheduler.timesteps:
                output = self.unet(image, t, class_labels=labels).sample
                image = self.scheduler.step(output, t, image, generator=generator).prev_sample
        pixels = ((image / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        encoded = []
        for picture in pixels:
            buf = io.BytesIO()
            Image.fromarray(picture).save(buf, format="PNG")
            encoded.append(buf.getvalue())
        return {"image": np.array(encoded, dtype=object), "label": labels.numpy(), "sample_id": ids}


def main(config: str, out: str) -> dict[str, float]:
    imported = time.perf_counter()
    cfg = BenchConfig.load(config)
    ray.init()  # as a user's script starts: a local Ray here (RAY_ADDRESS: that cluster)
    started = time.perf_counter()
    ds = ray.data.range(cfg.total).map_batches(
        Generator, fn_constructor_kwargs={"cfg": cfg}, batch_size=cfg.batch_size, concurrency=1,
        num_cpus=1,  # a reservation: the read and write tasks need the other core
    )
    ds.write_parquet(out)
    done = time.perf_counter()
    ray.shutdown()
    return {"images": cfg.total, "import_s": imported - START, "ray_init_s": started - imported,
            "pipeline_s": done - started, "threads": cfg.threads}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
