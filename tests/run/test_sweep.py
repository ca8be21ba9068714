"""`synthgen sweep` on a real local Ray: the issue's acceptance run over the built-in digits
model, and a sweep killed after its first cell commits, then run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, synthgen, tiny_spec, write_spec
from tests.helpers.faults import child_env, fault_plan


@pytest.mark.slow
def test_acceptance_digits_sweep(tmp_path: Path, ray_address: str) -> None:
    out = tmp_path / "sweep"
    result = synthgen("sweep", "pipelines/digits.yaml", "--grid", "sampler.guidance_scale=1.0,2.5",
                      "--grid", "sampler.steps=5,10", "--per-class", "20", "--real", "builtin:digits",
                      "--output", str(out), "--json", "--write-best", str(out / "best.yaml"),
                      "--estimate-workers", "8", address=ray_address, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cells = report["cells"]
    assert [c["settings"] for c in cells] == [
        {"sampler.guidance_scale": g, "sampler.steps": s} for g in (1.0, 2.5) for s in (5, 10)]
    for cell in cells:
        assert cell["images"] == 200 and (out / "cells" / str(cell["cell"]) / "_SUCCESS").exists()
        for key in ("logistic_regression", "svm_rbf"):
            scored = cell["classifiers"][key]
            assert 0.3 < scored["accuracy"] <= 1
            assert scored["ratio"] == pytest.approx(scored["accuracy"] / scored["real_accuracy"], abs=2e-4)
        assert cell["cas_ratio_min"] == min(c["ratio"] for c in cell["classifiers"].values())
        assert cell["speed"]["images_per_s"] > 0 and set(cell["diversity"]["per_class"]) == set("0123456789")
        full = cell["full_job"]
        assert full["samples"] == 1000
        assert [e["workers"] for e in full["estimates"]] == sorted({report["pool"]["workers"], 8})
        assert full["estimates"][-1]["wall_s"] < full["estimates"][0]["wall_s"]
    order = [c["cas_ratio_min"] for c in sorted(cells, key=lambda c: report["order"].index(c["cell"]))]
    assert order == sorted(order, reverse=True) and report["best"] == report["order"][0]
    # one pool for the whole sweep: every actor loaded the model once, whatever cells it ran
    assert report["actors"] and all(a["model_loads"] == 1 for a in report["actors"])
    assert sum(a["shards"] for a in report["actors"]) == 4
    log = next((out / "_logs").iterdir()).read_text()
    assert "model loaded 1 time(s)" in log
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "sweep.json").read_text())["results"]["cells"] == cells
    best = next(c for c in cells if c["cell"] == report["best"])
    planned = synthgen("plan", str(out / "best.yaml"), "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["samples"] == 1000
    text = (out / "best.yaml").read_text()
    assert f"guidance_scale: {best['settings']['sampler.guidance_scale']}" in text
    assert f"steps: {best['settings']['sampler.steps']}" in text

    # run again complete: nothing runs, the same figures, and the best cell's curve on request
    again = synthgen("sweep", "pipelines/digits.yaml", "--grid", "sampler.guidance_scale=1.0,2.5",
                     "--grid", "sampler.steps=5,10", "--per-class", "20", "--real", "builtin:digits",
                     "--output", str(out), "--json", "--write-best", str(out / "best.yaml"),
                     "--sizes", "0.5,1", address=ray_address, timeout=900)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["shards_run"] == 0 and rerun["actors"] == [] and rerun["best"] == report["best"]
    assert rerun["model_load_s"] == report["model_load_s"] > 0
    curve = rerun["best_curve"]["sizes"]
    assert [p["images"] for p in curve] == [100, 200]
    assert curve[-1]["classifiers"]["svm_rbf"]["accuracy"] == best["classifiers"]["svm_rbf"]["accuracy"]


@pytest.mark.slow
def test_killed_sweep_resumes_without_redoing_committed_cells(tmp_path: Path, class_model: Path,
                                                              ray_address: str) -> None:
    """Cell 0 is one shard, cell 1 three; cell 1's shard 1 holds, the driver is killed, and the
    same command run again (on two workers now) runs only what had no marker."""
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec(class_model, tmp_path / "unused"))
    out, gate = tmp_path / "sweep", tmp_path / "gate"
    args = [sys.executable, "-m", "synthgen.cli", "sweep", str(spec), "--grid", "output.shard_size=12,4",
            "--per-class", "4", "--output", str(out), "--json"]
    gate.touch()
    with fault_plan("hold:1:*", hold=gate):
        env = {**os.environ, "RAY_ADDRESS": ray_address}
        driver = subprocess.Popen(args, cwd=ROOT, env=child_env(env), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 240
        first = [out / "cells" / "0" / "_commits" / "shard-00000.json",
                 out / "cells" / "1" / "_commits" / "shard-00000.json"]
        while not all(p.exists() for p in first):
            assert driver.poll() is None and time.monotonic() < deadline, "driver ended too early"
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    gate.unlink()
    before = {p: p.read_bytes() for p in first}
    assert not (out / "cells" / "1" / "_commits" / "shard-00001.json").exists()
    result = synthgen("sweep", *args[4:], "--set", "compute.workers=2", address=ray_address)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["shards_run"] == 2 and report["cells_run"] == [1]
    assert all(p.read_bytes() == before[p] for p in first), "committed shards are never redone"
    assert [c["images"] for c in report["cells"]] == [12, 12] and report["real"] is None
    assert report["rank"] == "diversity" and report["cells"][0]["classifiers"] is None
    assert 1 <= len(report["actors"]) <= 2 and all(a["model_loads"] == 1 for a in report["actors"])
    again = synthgen("sweep", *args[4:], address=ray_address)
    assert again.returncode == 0 and json.loads(again.stdout)["shards_run"] == 0


@pytest.mark.slow
def test_filter_axis_reports_acceptance(tmp_path: Path, ray_address: str) -> None:
    """A grid over the filter's threshold: the same seeds, so a stricter one never accepts more."""
    out = tmp_path / "sweep"
    result = synthgen("sweep", "pipelines/digits.yaml", "--set", "filter.classifier=builtin:digits",
                      "--set", "filter.max_draws=20", "--set", "sampler.steps=5",
                      "--grid", "filter.min_prob=0.5,0.8", "--per-class", "3", "--output", str(out),
                      "--rank", "acceptance_rate", "--json", address=ray_address)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    loose, strict = report["cells"]
    for cell in (loose, strict):
        accepted = cell["filter"]
        assert cell["images"] == 30 and accepted["draws"] >= 30
        assert accepted["acceptance_rate"] == round(30 / accepted["draws"], 4)
        assert set(accepted["per_class"]) == set("0123456789")
    assert loose["filter"]["acceptance_rate"] >= strict["filter"]["acceptance_rate"]
    rates = [c["filter"]["acceptance_rate"] for c in (loose, strict)]
    assert report["order"][0] == 0 or rates[0] == rates[1]


@pytest.mark.slow
def test_generators_sweep_ranks_the_trained_model_first(tmp_path: Path, untrained_digits: Path,
                                                        ray_address: str) -> None:
    """builtin:digits against the same UNet with random weights: 2 cells, each model loaded once
    by each actor that ran it, the trained one ranked first and written to best.yaml."""
    out = tmp_path / "sweep"
    grid = f"model.source={untrained_digits},builtin:digits"
    result = synthgen("sweep", "pipelines/digits.yaml", "--grid", grid,
                      "--set", "sampler.steps=4", "--per-class", "5", "--real", "builtin:digits",
                      "--output", str(out), "--json", "--write-best", str(out / "best.yaml"),
                      address=ray_address, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sources = [c["settings"]["model.source"] for c in report["cells"]]
    assert sources == [str(untrained_digits), "builtin:digits"]
    assert report["order"] == [1, 0] and report["best"] == 1
    untrained, trained = report["cells"]
    assert trained["cas_ratio_min"] > untrained["cas_ratio_min"] + 0.2
    for actor in report["actors"]:
        assert actor["model_loads"] == len(actor["loads"]) == len(actor["cells"])
        assert all(n["loads"] == 1 for n in actor["loads"].values())
    assert set(report["model_load_s_per_model"]) == {trained["model"], untrained["model"]}
    assert all(c["full_job"]["estimates"] and c["speed"]["images_per_s"] for c in report["cells"])
    log = next((out / "_logs").iterdir()).read_text()
    assert f"{trained['model']} 1x" in log
    text = (out / "best.yaml").read_text()
    assert "source: builtin:digits" in text and str(untrained_digits) not in text
    planned = synthgen("plan", str(out / "best.yaml"), "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["samples"] == 1000


@pytest.mark.slow
def test_killed_generators_sweep_resumes_and_refuses_a_changed_model(
        tmp_path: Path, class_model: Path, ray_address: str) -> None:
    """Two tiny generators, three shards each, one actor: killed once cell 0's first shard
    commits; a second model changed since is refused (one line, exit 2), and once restored the
    run redoes nothing committed and loads each model once."""
    from tests.helpers.tiny_models import class_unet

    second = class_unet(tmp_path / "second", seed=1)
    spec = write_spec(tmp_path / "tiny.yaml",
                      tiny_spec(class_model, tmp_path / "unused", output__shard_size=4))
    out, gate = tmp_path / "sweep", tmp_path / "gate"
    args = [sys.executable, "-m", "synthgen.cli", "sweep", str(spec), "--grid",
            f"model.source={class_model},{second}", "--per-class", "4", "--output", str(out), "--json"]
    gate.touch()
    first = out / "cells" / "0" / "_commits" / "shard-00000.json"
    with fault_plan("hold:1:*", hold=gate):
        env = child_env({**os.environ, "RAY_ADDRESS": ray_address})
        driver = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 240
        while not first.exists():
            assert driver.poll() is None and time.monotonic() < deadline, "driver ended too early"
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    gate.unlink()
    before = first.read_bytes()
    (tmp_path / "kept").mkdir()
    (second / "unet" / "diffusion_pytorch_model.safetensors").rename(tmp_path / "kept" / "w")
    class_unet(second, seed=2)  # another revision of the same folder
    changed = synthgen("sweep", *args[4:], address=ray_address)
    [line] = (changed.stderr + changed.stdout).strip().splitlines()
    assert changed.returncode == 2 and "cell 1" in line and str(second) in line and "one model" in line
    (tmp_path / "kept" / "w").replace(second / "unet" / "diffusion_pytorch_model.safetensors")
    result = synthgen("sweep", *args[4:], address=ray_address)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert first.read_bytes() == before and report["shards_run"] == 5 and report["cells_run"] == [0, 1]
    [actor] = report["actors"]
    assert actor["model_loads"] == 2 and all(n["loads"] == 1 for n in actor["loads"].values())
