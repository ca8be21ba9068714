"""bfloat16 on CPUs with bf16 kernels: it runs in bf16 there (autocast), its pixels stay in
range and near float32's, it regenerates bit for bit; elsewhere it falls back with one warning.
`dtype: auto` is resolved by the driver into the dtype job.json and job_id hold."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from synthgen.engine.driver import prepare
from synthgen.models import runtime
from synthgen.spec.load import validate_spec
from tests.conftest import tiny_spec

needs_bf16 = pytest.mark.skipif(not runtime.cpu_has_bf16(), reason="this CPU has no bf16 kernels")


@pytest.fixture
def cpu_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the CPU check at a cpuinfo with the given flags (another kind of CPU)."""

    def use(*flags: str) -> None:
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {' '.join(flags)}\n")
        monkeypatch.setattr(runtime, "CPUINFO", info)
        runtime.cpu_has_bf16.cache_clear()

    yield use
    runtime.cpu_has_bf16.cache_clear()


def worker(model: Path, out: Path, dtype: str):
    from synthgen.engine.worker import Worker  # torch: only the tests that run a model pay for it

    spec = validate_spec(tiny_spec(model, out, model__dtype=dtype, sampler__guidance_scale=1.0))
    return Worker(prepare(spec).job, threads=1)


def shard_pixels(model: Path, out: Path, dtype: str) -> tuple[object, np.ndarray]:
    w = worker(model, out, dtype)
    samples = w.plan.samples(w.plan.shard(0))
    return w, w.adapter.generate(samples, w.spec.sampler)


@pytest.mark.parametrize(("flags", "auto"), [
    (("avx512_bf16",), "bfloat16"), (("amx_bf16", "amx_tile"), "bfloat16"), ((), "float32")])
def test_auto_resolves_by_the_cpus_flags(cpu_flags, flags: tuple[str, ...], auto: str) -> None:
    cpu_flags(*flags)
    assert runtime.resolve_dtype("auto", "cpu") == auto
    assert runtime.resolve_dtype("auto", "cuda") == "float16"
    assert runtime.resolve_dtype("float32", "cpu") == "float32"  # explicit dtypes stay as written


def test_auto_is_pinned_into_the_job_and_its_id(tmp_path: Path, class_model: Path) -> None:
    """job.json, job_id and the card hold the dtype `auto` resolved to: the one that made the data."""
    auto = prepare(validate_spec(tiny_spec(class_model, tmp_path / "a", model__dtype="auto"))).plan
    resolved = runtime.resolve_dtype("auto", "auto")
    assert auto.spec.model.dtype == resolved != "auto"
    same = prepare(validate_spec(tiny_spec(class_model, tmp_path / "b", model__dtype=resolved))).plan
    other = "float32" if resolved != "float32" else "bfloat16"
    different = prepare(validate_spec(tiny_spec(class_model, tmp_path / "c", model__dtype=other))).plan
    assert auto.job_id == same.job_id != different.job_id


def test_bf16_falls_back_with_one_warning_on_a_cpu_without_it(cpu_flags, tmp_path: Path, class_model: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    import torch  # the model runs: torch is needed here only

    cpu_flags()
    with caplog.at_level(logging.WARNING, logger="synthgen"):
        w, pixels = shard_pixels(class_model, tmp_path / "out", "bfloat16")
    assert w.adapter.precision == runtime.Precision(torch.float32)
    warnings = [r.getMessage() for r in caplog.records if "model.dtype" in r.getMessage()]
    assert warnings == ["model.dtype=bfloat16 on this CPU: using float32 (it has no bf16 instructions "
                        "(AVX512-BF16 or AMX))"]
    _, fp32 = shard_pixels(class_model, tmp_path / "fp32", "float32")
    assert np.array_equal(pixels, fp32)


@needs_bf16
def test_bf16_runs_in_bf16_with_pixels_in_range_and_near_float32(tmp_path: Path, class_model: Path) -> None:
    import torch  # the model runs: torch is needed here only

    w, bf16 = shard_pixels(class_model, tmp_path / "bf16", "bfloat16")
    assert w.adapter.precision.autocast == torch.bfloat16 and w.adapter.precision.name == "bfloat16"
    samples = w.plan.samples(w.plan.shard(0))
    with torch.inference_mode(), w.adapter.precision.context(w.adapter.device):
        x = torch.randn(2, *w.adapter.latent_shape(w.spec.sampler))
        pred = w.adapter.predict(x, torch.tensor(10), w.adapter.conditions(samples[:2], False))
    assert pred.dtype == torch.bfloat16
    _, fp32 = shard_pixels(class_model, tmp_path / "fp32", "float32")
    assert bf16.dtype == np.uint8 and bf16.shape == fp32.shape
    assert bf16.std() > 5  # images, not a constant: the model's output made it through
    diff = np.abs(bf16.astype(int) - fp32.astype(int))
    assert not np.array_equal(bf16, fp32)  # really another precision
    assert diff.mean() < 8, diff.mean()  # and still the same images, by a few levels at most


@needs_bf16
def test_bf16_regenerates_bit_for_bit(tmp_path: Path, class_model: Path) -> None:
    """The same CPU kind and dtype: a retried or resumed shard is the same bytes."""
    _, first = shard_pixels(class_model, tmp_path / "one", "bfloat16")
    _, again = shard_pixels(class_model, tmp_path / "two", "bfloat16")
    assert np.array_equal(first, again)
