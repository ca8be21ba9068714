"""What defines a training run: `TrainConfig`, stored in checkpoints and in synthgen.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthgen.errors import UserError
from synthgen.inputs.builtin import BUILTIN_DIGITS
from synthgen.spec.scheduler_names import SCHEDULERS

if TYPE_CHECKING:
    from synthgen.spec.job_spec import Device

DEFAULT_WARMUP = 200
WARMUP_SHARE = 0.1  # a default warm-up never takes more than this share of a short run

DIGITS_LICENSE = (
    "Weights: Apache-2.0. Trained on the UCI ML hand-written digits data (CC BY 4.0) "
    "as bundled with scikit-learn (load_digits, index < 1200 only)."
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in checkpoints and in synthgen.json."""

    source: str = BUILTIN_DIGITS
    output: Path = Path("out/model")
    steps: int = 12000
    epochs: int | None = None  # when set, overrides steps (rounded up to whole batches)
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int | None = None  # None: DEFAULT_WARMUP, capped to WARMUP_SHARE of the steps
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
    device: Device = "auto"
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
            raise UserError("sample_scheduler", self.sample_scheduler, f"use one of {', '.join(SCHEDULERS)}")
        if self.steps < 0 or self.batch_size < 1:
            raise UserError("steps", (self.steps, self.batch_size), "use positive sizes")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserError("--warmup-steps", self.warmup_steps, "give 0 or more")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def resolve_warmup(config: TrainConfig, total: int) -> int:
    """The run's warm-up steps: the default capped to a share of `total`; more than `total`
    given explicitly is refused (the learning rate would never reach its peak)."""
    if config.warmup_steps is None:
        return min(DEFAULT_WARMUP, int(total * WARMUP_SHARE))
    if config.warmup_steps > total:
        raise UserError("--warmup-steps", config.warmup_steps,
                        f"is more than the run's {total} steps, so the learning rate would never "
                        f"reach its peak; give at most {total}, or leave it out ({DEFAULT_WARMUP}, "
                        f"capped to {WARMUP_SHARE:.0%} of the steps)")
    return config.warmup_steps


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
