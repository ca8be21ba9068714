"""`synthgen train`: its options map one-to-one onto TrainConfig's fields."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from synthgen.cli.options import handle_errors
from synthgen.errors import UserError
from synthgen.train.config import TrainConfig

# `synthgen train` options: (TrainConfig field, type, help). Defaults live in TrainConfig alone.
TRAIN_OPTIONS: list[tuple[str, Any, str]] = [
    ("source", str, "builtin:digits, an image folder (one folder per class), a Parquet file or "
                    "folder, or a synthgen output."),
    ("steps", int, "Optimizer steps."),
    ("epochs", int, "Train for this many passes over the data instead of --steps."),
    ("batch_size", int, "Images per step."),
    ("lr", float, "Peak learning rate (warmup, then cosine decay)."),
    ("warmup_steps", int, "Linear warmup steps (default: 200, capped to a tenth of the steps)."),
    ("weight_decay", float, "AdamW weight decay."),
    ("ema_decay", float, "EMA decay of the saved weights."),
    ("cond_dropout", float, "Share of labels dropped, for classifier-free guidance."),
    ("image_size", int, "Train at this size (default: the data's)."),
    ("channels", click.Choice(["1", "3"]), "1 or 3 (default: 1 when every image is grayscale)."),
    ("block_out_channels", str, "UNet widths per level, comma-separated."),
    ("layers_per_block", int, "ResNet layers per UNet level."),
    ("norm_num_groups", int, "GroupNorm groups."),
    ("num_train_timesteps", int, "Diffusion timesteps."),
    ("beta_schedule", str, "Noise schedule."),
    ("prediction_type", click.Choice(["epsilon", "v_prediction"]), "What the UNet predicts."),
    ("seed", int, "Seed of the initialization and of every batch."),
    ("limit", int, "Use the first N images only."),
    ("log_every", int, "Log every N steps."),
    ("checkpoint_every", int, "Checkpoint every N steps, 0 for none."),
    ("keep_checkpoints", int, "Newest checkpoints kept."),
    ("resume_from", str, "Resume from a checkpoint file, or the newest one in a folder."),
    ("device", click.Choice(["auto", "cpu", "cuda"]), "Where to train."),
    ("threads", int, "torch CPU threads."),
    ("sample_scheduler", str, "Sampler recorded with the model and used for its sample grid."),
    ("sample_steps", int, "Its steps."),
    ("guidance_scale", float, "Its guidance scale."),
    ("license", str, "License text stored with the model."),
]


def _train_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per TrainConfig field; its --help shows the field's default."""
    defaults = TrainConfig()
    for name, kind, text in reversed(TRAIN_OPTIONS):
        value = getattr(defaults, name)
        if value is not None:
            shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
            text = f"{text}  [default: {shown}]"
        command = click.option(f"--{name.replace('_', '-')}", name, type=kind, help=text)(command)
    return command


@click.command()
@click.option("--output", required=True, metavar="DIR", help="Where the model folder goes.")
@_train_options
@handle_errors
def train(output: str, **options: Any) -> None:
    """Train a small class-conditional diffusion model (diffusers UNet2DModel) on labeled images.

    Saves checkpoints as it goes (--resume-from continues one), keeps EMA weights, and writes a
    model folder that `model.source` accepts, with a sample grid (samples.png).

    \b
    Examples:
      synthgen train --source builtin:digits --output ./models/digits --steps 6000 --threads 2
      synthgen train --source ./icons --output ./models/icons --image-size 32 --epochs 50
      synthgen train --source builtin:digits --output ./models/digits --resume-from ./models/digits
    """
    from synthgen.storage.store import Store, check_writable
    from synthgen.train.trainer import train as train_model  # torch: only when training

    check_writable(Store(output), "--output")  # before training, not after its minutes of work
    given = {k: v for k, v in options.items() if v is not None}
    if "channels" in given:
        given["channels"] = int(given["channels"])
    if "block_out_channels" in given:
        try:
            given["block_out_channels"] = tuple(int(c) for c in given["block_out_channels"].split(","))
        except ValueError:
            raise UserError("--block-out-channels", given["block_out_channels"],
                            "write the widths as integers separated by commas, e.g. 32,64,64") from None
    click.echo(f"saved the model to {train_model(TrainConfig(output=Path(output), **given))}")
