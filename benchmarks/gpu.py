"""GPU benchmark: real-size architectures with random weights, synthgen's worker vs diffusers.

`python -m benchmarks.gpu [--arch sd15|dit-xl-2-256] [--batch 16] [--steps 25]` builds the Stable
Diffusion 1.5 UNet (with its VAE and a CLIP ViT-L text encoder) and DiT-XL/2-256 (with its VAE)
from their published configs, random weights, and measures on the GPU:
- the plain diffusers pipeline call at the same batch, steps and guidance (the anchor);
- synthgen's `Worker` on whole shards (PNG, Parquet, commit), with the options a user can turn
  on: bf16/fp16, channels_last, torch.compile (its warm-up shard timed apart and reported);
- model FLOP utilisation (FLOPs counted by torch's FlopCounterMode, against the GPU's peak) and
  the share of a shard's wall time the GPU is busy (merged kernel intervals, torch.profiler);
- the largest batch that fits (doubling until out of memory; the worker's own backoff halves).
On a machine without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# Dense fp16/bf16 tensor-core peaks (FLOP/s) by device name; --peak-tflops for others.
PEAKS = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12,
         "L4": 121e12, "A10": 125e12}


def build_sd15(out: Path) -> Path:
    """runwayml/stable-diffusion-v1-5's unet, vae and text_encoder configs; a small tokenizer."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.helpers.tiny_models import clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu"))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=sd_vae(), text_encoder=text_encoder,
                                   tokenizer=clip_tokenizer(max_length=77), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(out)
    return out


def build_dit(out: Path) -> Path:
    """facebook/DiT-XL-2-256: 28 layers, 16 heads of 72, patch 2, 1,000 classes, learned sigma."""
    import torch
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    torch.manual_seed(0)
    transformer = DiTTransformer2DModel(
        num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
        sample_size=32, patch_size=2, num_embeds_ada_norm=1000)
    id2label = {str(i): f"class{i}" for i in range(1000)}
    pipe = DiTPipeline(transformer=transformer, vae=sd_vae(), scheduler=DDIMScheduler(),
                       id2label=id2label)
    pipe.to(torch.float16).save_pretrained(out)
    index = json.loads((out / "model_index.json").read_text())
    (out / "model_index.json").write_text(json.dumps({**index, "id2label": id2label}))
    return out


def sd_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, sample_size=512)


ARCHS: dict[str, tuple[Callable[[Path], Path], float]] = {"sd15": (build_sd15, 7.5),
                                                          "dit-xl-2-256": (build_dit, 4.0)}


@dataclass(frozen=True)
class Case:
    """One architecture's model folder and the settings both contenders run it with."""

    arch: str  # a key of ARCHS
    model: Path  # the saved pipeline folder
    batch: int
    steps: int  # DDIM steps
    dtype: str  # "float16" or "bfloat16"
    guidance: float


def job_spec(case: Case, out: Path, shards: int) -> dict[str, Any]:
    classes: dict[str, Any] = {"count": case.batch * shards // 2}
    if case.arch == "sd15":
        classes.update(names=["cat", "dog"], templates=["a photo of a {name}"])
    else:
        classes.update(names=["class1", "class2"])
    return {"name": case.arch, "model": {"source": str(case.model), "dtype": case.dtype, "device": "cuda"},
            "sampler": {"scheduler": "ddim", "steps": case.steps, "guidance_scale": case.guidance},
            "classes": classes, "output": {"uri": str(out), "shard_size": case.batch},
            "compute": {"batch_size": case.batch, "workers": 1}}


def diffusers_call(case: Case) -> float:
    """Images/s of the pipeline's own __call__, after one warm-up call."""
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(case.model, torch_dtype=getattr(torch, case.dtype)).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    kwargs: dict[str, Any] = ({"prompt": ["a photo of a cat"] * case.batch} if case.arch == "sd15"
                              else {"class_labels": [1] * case.batch})

    def call() -> None:
        pipe(num_inference_steps=case.steps, guidance_scale=case.guidance, **kwargs)
        torch.cuda.synchronize()

    call()
    start = time.perf_counter()
    call()
    return case.batch / (time.perf_counter() - start)


def synthgen_shards(case: Case, workdir: Path, options: set[str]) -> dict[str, Any]:
    """Three shards of one batch each on a bare Worker: a warm-up, a timed one, a profiled one."""
    import torch

    from synthgen.engine.driver import prepare
    from synthgen.engine.worker import Worker
    from synthgen.spec.load import validate_spec

    spec = job_spec(case, workdir / f"out-{'-'.join(sorted(options)) or 'plain'}", shards=3)
    worker = Worker(prepare(validate_spec(spec)).job)
    apply_options(worker.adapter, options)
    start = time.perf_counter()
    worker.run_shard(0)
    warmup_s = time.perf_counter() - start
    torch.cuda.synchronize()
    timed = worker.run_shard(1)
    busy = gpu_busy_share(lambda: worker.run_shard(2))
    return {"rate": timed.rows / timed.seconds, "warmup_s": warmup_s, "gpu_busy": busy,
            "flops_per_image": flops_per_image(worker, case.guidance != 1.0)}


def apply_options(adapter: Any, options: set[str]) -> None:
    import torch

    name = "unet" if hasattr(adapter, "unet") else "transformer"
    module = getattr(adapter, name)
    if "channels_last" in options:
        module.to(memory_format=torch.channels_last)
    if "compile" in options:
        setattr(adapter, name, torch.compile(module))


def flops_per_image(worker: Any, guided: bool) -> float:
    """FLOPs of the whole loop for one image: denoiser calls times steps (x2 with guidance)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    adapter, sampler = worker.adapter, worker.spec.sampler
    samples = worker.plan.samples(worker.plan.shard(0))[:1]
    latents = torch.randn(2 if guided else 1, *adapter.latent_shape(sampler), device="cuda",
                          dtype=adapter.dtype)
    cond = adapter.conditions(samples, guided)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        adapter.predict(latents, torch.tensor(500, device="cuda"), cond)
    return counter.get_total_flops() * sampler.steps


def gpu_busy_share(run: Callable[[], Any]) -> float:
    """Kernel time (overlaps merged) over wall time while `run` runs."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        wall_us = (time.perf_counter() - start) * 1e6
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA)
    busy, reach = 0.0, float("-inf")
    for begin, end in spans:
        if end > reach:
            busy += end - max(begin, reach)
            reach = end
    return busy / wall_us


def largest_batch(case: Case, workdir: Path) -> int:
    """Double the batch until the accelerator runs out of memory (one step per try): `case`'s
    model, dtype and guidance; its batch and steps are not used."""
    import torch

    from synthgen.engine.driver import prepare
    from synthgen.engine.worker import Worker
    from synthgen.spec.load import validate_spec

    batch, fits = 8, 0
    probe = replace(case, batch=8, steps=1)
    worker = Worker(prepare(validate_spec(job_spec(probe, workdir / "probe", shards=1))).job)
    while batch <= 4096:
        samples = [worker.plan.sample(i % worker.plan.total) for i in range(batch)]
        try:
            worker.adapter.generate(samples, worker.spec.sampler)
        except torch.OutOfMemoryError:
            break
        fits, batch = batch, batch * 2
        torch.cuda.empty_cache()
    return fits


def peak_flops(override: float | None) -> float | None:
    import torch

    if override:
        return override * 1e12
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAKS.items() if key in name), None)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), action="append")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense fp16/bf16 peak")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: the GPU benchmark is skipped (run it where a GPU is)")
        return []
    peak, rows = peak_flops(args.peak_tflops), []
    print(f"{torch.cuda.get_device_name()}, peak {peak / 1e12 if peak else '?'} TFLOP/s, batch "
          f"{args.batch}, {args.steps} ddim steps, {args.dtype}", flush=True)
    with tempfile.TemporaryDirectory(prefix="synthgen-gpu-") as tmp:
        for arch in args.arch or sorted(ARCHS):
            rows += bench_arch(arch, Path(tmp), args, peak)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


def bench_arch(arch: str, tmp: Path, args: argparse.Namespace, peak: float | None) -> list[dict[str, Any]]:
    build, guidance = ARCHS[arch]
    case = Case(arch, build(tmp / arch), args.batch, args.steps, args.dtype, guidance)
    anchor = diffusers_call(case)
    print(f"{arch}: diffusers pipeline call {anchor:.2f} images/s; largest batch that fits: "
          f"{largest_batch(case, tmp)}", flush=True)
    rows = []
    for options in ({args.dtype}, {args.dtype, "channels_last"}, {args.dtype, "compile"},
                    {args.dtype, "channels_last", "compile"}):
        if "channels_last" in options and arch != "sd15":
            continue
        found = synthgen_shards(case, tmp, options - {args.dtype})
        mfu = found["rate"] * found["flops_per_image"] / peak if peak else None
        row = {"arch": arch, "options": "+".join(sorted(options)), "anchor_rate": anchor, **found,
               "vs_diffusers": found["rate"] / anchor, "mfu": mfu}
        rows.append(row)
        print(f"  synthgen {row['options']:<32} {row['rate']:8.2f} images/s  x{row['vs_diffusers']:.2f} "
              f"vs diffusers  GPU busy {row['gpu_busy']:.1%}  MFU {mfu if mfu is None else f'{mfu:.1%}'}  "
              f"warm-up shard {row['warmup_s']:.1f} s", flush=True)
    return rows


if __name__ == "__main__":
    main()
