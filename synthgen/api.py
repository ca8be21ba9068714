"""The Python API: plan, run and resume a job from Python. The CLI is a shell over it.

    import synthgen
    synthgen.plan("pipelines/digits.yaml", **{"classes.count": 2}).samples      # 20
    done = synthgen.run({"classes": {"names": ["0", "1"], "count": 2}}, output="./out/two")
    synthgen.open_dataset(done.uri)

A spec is a YAML file's path, a dict or a JobSpec; a dict's relative paths are relative to the
working directory. Overrides name a field by its dotted path, as `--set` does: a mapping
`{"sampler.steps": 10}` or `--set`'s own `"sampler.steps=10"` strings. `plan`'s keywords take
either spelling, `**{"sampler.steps": 10}` or `sampler__steps=10` (a dot is no identifier).

A mistake raises the UserError the CLI prints (field, value, fix) before anything is written;
shards that fail for good raise JobFailed; Ctrl-C (a notebook's interrupt) raises Interrupted,
which says what is committed: it is kept, and `resume(uri)` goes on from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgen.commands.estimate import Calibration, SizeEstimate, estimate_size
from synthgen.commands.estimate import calibrate as calibrate_job
from synthgen.engine.driver import load_job, prepare, run_job
from synthgen.engine.interrupts import remembering_ctrl_c
from synthgen.engine.job import CheckedJob
from synthgen.engine.lifecycle import RunOptions
from synthgen.engine.plan_checks import label_table
from synthgen.engine.progress import console_lines
from synthgen.output.catalog import read_markers
from synthgen.output.job_record import find_job_record
from synthgen.spec.init_manifest import describe_init
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.load import Override, load_spec

SpecLike = str | Path | Mapping[str, Any] | JobSpec
Overrides = Mapping[str, Any] | Iterable[Override]  # {"a.b": 1}, or "a.b=1" strings and ("a.b", 1) pairs


@dataclass(frozen=True)
class Label:
    """One manifest entry's label, as the model sees it: `source` says where `model_class` came
    from (model_label, id2label, position; prompt for text-to-image; unknown: model not here)."""

    label: int
    name: str
    model_class: int | None
    source: str
    images: int

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "model_class": self.model_class, "from": self.source}


@dataclass(frozen=True)
class PlanResult:
    """A checked job, nothing written: what it will make, where, and with which model."""

    job_id: str
    samples: int
    shards: int
    shard_size: int
    classes: int
    per_class: Mapping[str, int]
    splits: Mapping[str, int]
    order: str
    uri: str
    model: str
    model_family: str | None  # None: the model is not on this machine (resolved on the workers)
    model_revision: str | None
    labels: tuple[Label, ...]
    first_shard: Mapping[str, Any]  # its split and per-class counts: is every class in it?
    init: Mapping[str, Any] | None  # an img2img job's listed source
    init_text: str | None  # the same in words, with the spec's init settings
    estimate: SizeEstimate | None  # None: the image size is unknown until the model is here
    calibration: Calibration | None  # only when plan(calibrate=True) loaded the model here

    @classmethod
    def of(cls, prepared: CheckedJob, calibration: Calibration | None = None) -> PlanResult:
        plan, info = prepared.plan, prepared.info
        summary = plan.summary()
        counts = [entry.count for entry in plan.manifest.entries]
        labels = tuple(Label(row["label"], row["name"], row["model_class"], row["from"], count)
                       for row, count in zip(label_table(plan, info), counts, strict=True))
        init, first = summary.get("init"), plan.shard(0)
        init_text = describe_init(plan.spec.init, init) if plan.spec.init and init else None
        return cls(job_id=plan.job_id, samples=plan.total, shards=plan.num_shards,
                   shard_size=plan.spec.output.shard_size, classes=summary["classes"],
                   per_class=summary["per_class"], splits=summary["splits"], order=plan.spec.output.order,
                   uri=plan.spec.output.uri, model=plan.spec.model.source,
                   model_family=info.family if info else None,
                   model_revision=info.revision if info else None, labels=labels,
                   first_shard={"split": first.split, "per_class": plan.per_class([first])},
                   init=init, init_text=init_text,
                   estimate=estimate_size(plan, info), calibration=calibration)

    def to_json(self) -> dict[str, Any]:
        """What `synthgen plan --json` prints."""
        return {"job_id": self.job_id, "samples": self.samples, "shards": self.shards,
                "shard_size": self.shard_size, "classes": self.classes, "per_class": dict(self.per_class),
                "order": self.order, "splits": dict(self.splits),
                **({"init": dict(self.init)} if self.init else {}),
                "model": self.model, "model_family": self.model_family,
                "model_revision": self.model_revision, "output": self.uri,
                "labels": [label.to_json() for label in self.labels], "first_shard": dict(self.first_shard),
                "estimate": self.estimate.to_json() if self.estimate else None,
                "calibration": self.calibration.to_json() if self.calibration else None}


@dataclass(frozen=True)
class RunResult:
    """What a run left in its output: `complete` once every shard is committed and finalized."""

    job_id: str
    uri: str
    complete: bool
    samples: int  # committed
    shards: int  # committed
    samples_planned: int
    shards_planned: int
    per_class: Mapping[str, int]  # committed samples per class name

    @classmethod
    def of(cls, status: Mapping[str, Any]) -> RunResult:
        """From the job's status (output/catalog.py `job_status`)."""
        return cls(job_id=status["job_id"], uri=status["uri"], complete=status["complete"],
                   samples=status["samples_committed"], shards=status["shards_committed"],
                   samples_planned=status["samples_total"], shards_planned=status["shards_total"],
                   per_class={name: n["committed"] for name, n in status["per_class"].items()})


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the shards committed so far are kept. `line` says how many, and
    the caller's way to go on (the CLI's command, or this API's call)."""

    def __init__(self, prepared: CheckedJob) -> None:
        super().__init__()
        plan = prepared.plan
        self.uri, self.shards_total, self.samples_total = plan.spec.output.uri, plan.num_shards, plan.total
        self.unreadable: str | None = None  # the error that hid what is committed
        self.started, self.shards, self.samples = False, 0, 0
        try:
            self.started = find_job_record(prepared.store) is not None
            markers = read_markers(prepared.store) if self.started else {}
        except (OSError, KeyboardInterrupt) as exc:
            self.unreadable = type(exc).__name__
            return
        self.shards, self.samples = len(markers), sum(m.rows for m in markers.values())

    def line(self, resume: str, rerun: str) -> str:
        if self.unreadable:
            return (f"interrupted; could not read what is committed at {self.uri} ({self.unreadable}); "
                    f"`{resume}` goes on from what is")
        if not self.started:
            return f"interrupted before anything was written to {self.uri}; rerun: {rerun}"
        return (f"interrupted: {self.shards}/{self.shards_total} shards ({self.samples}/"
                f"{self.samples_total} images) are committed at {self.uri} and kept; resume with: {resume}")

    def __str__(self) -> str:
        return self.line(f"synthgen.resume({self.uri!r})", "the same call")


def plan(spec: SpecLike, /, *, calibrate: bool = False, **overrides: Any) -> PlanResult:
    """Check `spec` and say what it would make; writes nothing and loads no model, unless
    `calibrate` loads it here to time a batch and project the job's wall time."""
    pairs = [(key.replace("__", "."), value) for key, value in overrides.items()]
    prepared = prepare(load(spec, pairs), fetch="cached")
    return PlanResult.of(prepared, calibrate_job(prepared.plan) if calibrate else None)


def run(spec: SpecLike, output: str | None = None, overrides: Overrides | None = None,
        address: str | None = None, *, takeover: bool = False, per_worker: bool = False) -> RunResult:
    """Run the job to completion on Ray (an embedded one, unless `address` or RAY_ADDRESS names
    a cluster), resuming it when `output` holds it already. `takeover`: take the output's lock
    from a driver that is really dead; `per_worker`: show each worker's throughput."""
    prepared = prepare(load(spec, overrides, output))
    return execute(prepared, RunOptions(address=address, takeover=takeover, per_worker=per_worker))


def resume(uri: str, overrides: Overrides | None = None, address: str | None = None, *,
           takeover: bool = False, repair: bool = False, per_worker: bool = False) -> RunResult:
    """Finish the job stored at `uri`: only uncommitted shards run. Only execution settings
    (compute.*) may be overridden. `repair`: first regenerate committed shards whose data is
    missing or corrupt."""
    spec, manifest = load_job(uri, _pairs(overrides))
    options = RunOptions(address=address, takeover=takeover, repair=repair, per_worker=per_worker)
    return execute(prepare(spec, manifest), options)


def load(spec: SpecLike, overrides: Overrides | None = None, output: str | None = None) -> JobSpec:
    """The validated spec, overrides and `output` applied."""
    source = spec.model_dump(mode="json") if isinstance(spec, JobSpec) else spec
    return load_spec(source, _pairs(overrides), output)


def execute(prepared: CheckedJob, options: RunOptions) -> RunResult:
    """Run a prepared job; Ctrl-C becomes Interrupted, with what it left."""
    try:
        with remembering_ctrl_c(), console_lines():
            return RunResult.of(run_job(prepared, options))
    except KeyboardInterrupt:
        raise Interrupted(prepared) from None


def _pairs(overrides: Overrides | None) -> list[Override]:
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    return list(overrides or ())
