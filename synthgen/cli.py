"""The `synthgen` command line: a Click group whose commands delegate to the modules."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from synthgen.errors import JobFailed, UserError

EXIT_USER, EXIT_FAILED = 2, 1


def _handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake is one line and exit 2; a runtime failure names its cause, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER)
        except JobFailed as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as exc:
            if debug:
                raise
            click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
                       err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Full tracebacks and debug logs.")
@click.version_option(package_name="synthgen")
def main(debug: bool) -> None:
    """synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="synthgen: %(message)s", stream=sys.stderr)
    for noisy in ("diffusers", "ray", "fsspec", "s3fs", "botocore", "aiobotocore", "urllib3",
                  "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a spec field by dotted path (repeatable).")
output_option = click.option("--output", metavar="URI", help="Output URI (overrides output.uri).")
address_option = click.option("--address", metavar="ADDR",
                              help="Ray cluster to drive (default: RAY_ADDRESS, else local Ray).")
takeover_option = click.option("--takeover", is_flag=True,
                               help="Take the output's job lock from a driver that is really dead.")
per_worker_option = click.option("--per-worker", is_flag=True,
                                 help="Also show each worker's throughput (images/s).")


@main.command()
@spec_argument
@set_option
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_handle_errors
def plan(spec: str, overrides: tuple[str, ...], output: str | None, as_json: bool) -> None:
    """Validate SPEC and print its plan, without loading a model or writing anything.

    \b
    Example:
      synthgen plan pipelines/digits.yaml --set classes.count=200
    """
    from synthgen.driver import prepare
    from synthgen.spec import load_spec

    prepared = prepare(load_spec(spec, overrides, output), fetch="cached")
    info = prepared.info
    summary = {**prepared.plan.summary(), "model": prepared.plan.spec.model.source,
               "model_family": info.family if info else None,
               "model_revision": info.revision if info else None, "output": prepared.plan.spec.output.uri}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    note = f"{info.family}, {info.revision}" if info else "not cached here; resolved on the workers"
    summary["model"] = f"{summary['model']} ({note})"
    for key in ("job_id", "samples", "shards", "shard_size", "classes", "model", "output"):
        click.echo(f"{key:>12}: {summary[key]}")
    for name, count in summary["per_class"].items():
        click.echo(f"{'':>12}  {name}: {count}")


@main.command()
@spec_argument
@output_option
@set_option
@address_option
@takeover_option
@per_worker_option
@_handle_errors
def run(spec: str, output: str | None, overrides: tuple[str, ...], address: str | None,
        takeover: bool, per_worker: bool) -> None:
    """Run the job in SPEC to completion (resuming it if its output holds it already).

    \b
    Examples:
      synthgen run pipelines/digits.yaml
      synthgen run pipelines/digits.yaml --output s3://bucket/digits --set sampler.steps=10
    """
    from synthgen.driver import prepare, run_job
    from synthgen.spec import load_spec

    _report(run_job(prepare(load_spec(spec, overrides, output)), address, takeover=takeover,
                    per_worker=per_worker))


@main.command()
@click.argument("uri")
@set_option
@address_option
@takeover_option
@click.option("--repair", is_flag=True,
              help="First re-hash every committed shard and regenerate those missing or corrupt.")
@per_worker_option
@_handle_errors
def resume(uri: str, overrides: tuple[str, ...], address: str | None, takeover: bool,
           repair: bool, per_worker: bool) -> None:
    """Finish the job stored at URI: only uncommitted shards are run.

    Only execution settings may be overridden (compute.*); anything that changes the data
    changes the job id and is refused.

    \b
    Examples:
      synthgen resume ./out/digits --set compute.workers=2
      synthgen resume s3://bucket/digits --repair
    """
    from synthgen.driver import load_job, prepare, run_job

    spec, manifest = load_job(uri, overrides)
    _report(run_job(prepare(spec, manifest), address, takeover=takeover, repair=repair,
                    per_worker=per_worker))


@main.command()
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@_handle_errors
def status(uri: str, as_json: bool) -> None:
    """Show how far the job at URI is: shards and samples committed, failures.

    \b
    Example:
      synthgen status ./out/digits --json
    """
    from synthgen.status import job_status
    from synthgen.storage import Store

    state = job_status(Store(uri))
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"job {state['job_id']}: {'complete' if state['complete'] else 'incomplete'}")
    click.echo(f"shards {state['shards_committed']}/{state['shards_total']}, "
               f"samples {state['samples_committed']}/{state['samples_total']}")
    for failure in state["failed_shards"]:
        click.echo(f"failed shard {failure['shard']}: {failure['error']}")
    if state["driver"]:
        from synthgen.lock import describe

        click.echo(f"driver: {describe(state['driver'])} (holds the job lock)")


@main.command()
@click.argument("uri")
@_handle_errors
def verify(uri: str) -> None:
    """Re-read every committed shard of URI and check size, sha256 and rows against its marker.

    \b
    Example:
      synthgen verify ./out/digits
    """
    from synthgen.status import verify as verify_store
    from synthgen.storage import Store

    problems = verify_store(Store(uri))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(EXIT_FAILED)
    click.echo(f"ok: every shard of {uri} matches its marker")


@main.command()
@click.argument("uri")
@click.option("--output", "dest", required=True, metavar="PATH", help="Where to write the PNG.")
@click.option("--per-row", default=8, show_default=True, type=click.IntRange(min=1),
              help="Images in each row.")
@click.option("--max-rows", default=20, show_default=True, type=click.IntRange(min=1),
              help="Classes (or prompts) shown at most.")
@_handle_errors
def preview(uri: str, dest: str, per_row: int, max_rows: int) -> None:
    """Write a contact sheet of URI: one labeled row per class (or per prompt).

    \b
    Example:
      synthgen preview ./out/digits --output grid.png
    """
    from synthgen.preview import PreviewOptions, write_preview

    size = write_preview(uri, dest, PreviewOptions(per_row=per_row, max_rows=max_rows))
    click.echo(f"wrote {dest} ({size} bytes)")


@main.command()
@click.argument("uri")
@click.option("--format", "fmt", required=True, type=click.Choice(["imagefolder", "webdataset"]),
              help="imagefolder: one folder per class; webdataset: tar shards with json metadata.")
@click.option("--output", "dest", required=True, metavar="DIR", help="A new or empty folder (or URL).")
@_handle_errors
def export(uri: str, fmt: str, dest: str) -> None:
    """Copy the images of URI into an ImageFolder tree or WebDataset tar shards, then check counts.

    \b
    Examples:
      synthgen export ./out/digits --format imagefolder --output ./digits-imagefolder
      synthgen export s3://bucket/digits --format webdataset --output ./digits-wds
    """
    from synthgen.export import export as export_output

    done = export_output(uri, fmt, dest)
    click.echo(f"exported {done.total} images to {dest} ({fmt}, {len(done.counts)} "
               f"{'folders' if fmt == 'imagefolder' else 'tar files'})")


@main.command()
@click.argument("uri")
@_handle_errors
def show(uri: str) -> None:
    """Show the output at URI for people: counts per class, shards, throughput, failures, provenance.

    \b
    Example:
      synthgen show ./out/digits
    """
    from synthgen.show import show as show_output
    from synthgen.storage import Store

    show_output(Store(uri), click.echo)



@main.command("eval")
@click.argument("uri")
@click.option("--real", required=True, metavar="SOURCE",
              help="Real labeled test data: builtin:digits (load_digits index >= 1200), an image "
                   "folder (one folder per class), a Parquet dataset or a synthgen output.")
@click.option("--real-train", metavar="SOURCE",
              help="Real training data for the reference accuracy and the ratio "
                   "(builtin:digits: index < 1200 unless given).")
@click.option("--max-per-class", type=click.IntRange(min=1), metavar="N",
              help="Use the first N synthetic images of each class only.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@_handle_errors
def eval_(uri: str, real: str, real_train: str | None, max_per_class: int | None, as_json: bool) -> None:
    """Classification Accuracy Score of the labeled dataset at URI.

    A logistic regression and an RBF SVM are trained on its images only, tested on the real
    data, and compared with the same classifiers trained on real training data; per-class
    accuracy, the confusion matrix and per-class diversity come with it.

    \b
    Examples:
      synthgen eval ./out/digits --real builtin:digits
      synthgen eval s3://bucket/pets --real ./pets/test --real-train ./pets/train --json
    """
    from synthgen.eval import EvalConfig, evaluate, format_report

    report = evaluate(EvalConfig(uri, real, real_train, max_per_class))
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


# `synthgen train` options: (TrainConfig field, type, help). Defaults live in TrainConfig alone.
TRAIN_OPTIONS: list[tuple[str, Any, str]] = [
    ("source", str, "builtin:digits, an image folder (one folder per class), a Parquet file or "
                    "folder, or a synthgen output."),
    ("steps", int, "Optimizer steps."),
    ("epochs", int, "Train for this many passes over the data instead of --steps."),
    ("batch_size", int, "Images per step."),
    ("lr", float, "Peak learning rate (warmup, then cosine decay)."),
    ("warmup_steps", int, "Linear warmup steps."),
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


class _TrainOption(click.Option):
    """Shows TrainConfig's default in --help, looked up only then (synthgen.train imports torch)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from synthgen.train import TrainConfig

        value = getattr(TrainConfig(), self.name or "", None)
        if value is not None and "[default:" not in (self.help or ""):
            shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
            self.help = f"{self.help}  [default: {shown}]"
        return super().get_help_record(ctx)


def _train_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for name, kind, text in reversed(TRAIN_OPTIONS):
        command = click.option(f"--{name.replace('_', '-')}", name, type=kind, help=text,
                               cls=_TrainOption)(command)
    return command


@main.command()
@click.option("--output", required=True, metavar="DIR", help="Where the model folder goes.")
@_train_options
@_handle_errors
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
    from synthgen.train import TrainConfig
    from synthgen.train import train as train_model

    given = {k: v for k, v in options.items() if v is not None}
    if "channels" in given:
        given["channels"] = int(given["channels"])
    if "block_out_channels" in given:
        try:
            given["block_out_channels"] = tuple(int(c) for c in given["block_out_channels"].split(","))
        except ValueError:
            raise UserError("--block-out-channels", given["block_out_channels"],
                            "write the widths as integers separated by commas, e.g. 32,64,64") from None
    click.echo(f"saved the model to {train_model(TrainConfig(output=output, **given))}")


dashboard_option = click.option(
    "--address", metavar="URL",
    help="The Ray cluster's dashboard (Jobs API), e.g. http://HEAD:8265 "
         "(default: RAY_API_SERVER_ADDRESS).")


@main.command()
@spec_argument
@dashboard_option
@output_option
@set_option
@click.option("--wait", is_flag=True, help="Stream the job's log; exit with its outcome.")
@click.option("--ship-package/--no-ship-package", default=True,
              help="Send this synthgen along (default), or use the one installed on the cluster.")
@_handle_errors
def submit(spec: str, address: str | None, output: str | None, overrides: tuple[str, ...],
           wait: bool, ship_package: bool) -> None:
    """Submit the job in SPEC to a Ray cluster, whose head then runs its driver (Ray Jobs API).

    \b
    Examples:
      synthgen submit pipelines/digits.yaml --address http://127.0.0.1:8265 --wait
      synthgen submit pipelines/digits.yaml --address http://HEAD:8265 \\
          --output s3://bucket/digits --set compute.workers=8
    """
    from synthgen.spec import load_spec
    from synthgen.submit import submit as submit_job

    job = submit_job(load_spec(spec, overrides, output), address, ship_package)
    click.echo(f"submitted Ray job {job.ray_job} (synthgen job {job.job_id}) to {job.address}")
    for key, value in (("output", job.output), ("progress", f"synthgen status {job.output}"),
                       ("logs", job.logs_command),
                       ("cancel", f"synthgen cancel {job.ray_job} --address {job.address}"),
                       ("dashboard", job.address)):
        click.echo(f"  {key:>9}: {value}")
    if wait:
        _follow(job.address, job.ray_job)


@main.command()
@dashboard_option
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for machines.")
@_handle_errors
def jobs(address: str | None, as_json: bool) -> None:
    """List the jobs synthgen submitted to a Ray cluster, with their status and output.

    \b
    Example:
      synthgen jobs --address http://127.0.0.1:8265
    """
    from synthgen.submit import list_jobs

    rows = list_jobs(address)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no synthgen jobs on this cluster")
        return
    for row in [{"ray_job": "RAY JOB", "status": "STATUS", "started": "STARTED", "output": "OUTPUT"},
                *rows]:
        click.echo(f"{row['ray_job']:<26}  {row['status']:<9}  {row['started'] or '-':<19}  {row['output']}")


@main.command()
@click.argument("job_id")
@dashboard_option
@_handle_errors
def cancel(job_id: str, address: str | None) -> None:
    """Stop the submitted job JOB_ID (a Ray job id from `synthgen submit` or `synthgen jobs`).

    Committed shards stay in the output; `synthgen resume URI` (or submitting again) continues.

    \b
    Example:
      synthgen cancel synthgen-digits-1a2b3c4d --address http://127.0.0.1:8265
    """
    from synthgen.submit import cancel as cancel_job

    row = cancel_job(address, job_id)
    if row["status"] == "STOPPED":
        click.echo(f"{row['ray_job']}: STOPPED; committed shards stay in {row['output']}, "
                   f"`synthgen resume {row['output']}` continues the job")
    elif row["status"] in ("SUCCEEDED", "FAILED"):
        click.echo(f"{row['ray_job']} had ended already: {row['status']}")
    else:
        click.echo(f"{row['ray_job']}: stop requested, still {row['status']}; `synthgen jobs` "
                   "shows when it ends")


@main.command("run-submitted", hidden=True)
@click.argument("payload")
@_handle_errors
def run_submitted(payload: str) -> None:
    """The driver of a submitted job, on the cluster (see `synthgen submit`)."""
    from synthgen.submit import run_submitted as run_payload

    _report(run_payload(payload))


def _follow(address: str, ray_job: str) -> None:
    from synthgen.submit import follow

    try:
        done = follow(address, ray_job, lambda text: click.echo(text, nl=False))
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; the job goes on (`synthgen cancel {ray_job} --address "
                   f"{address}` stops it)", err=True)
        sys.exit(130)
    if done.status != "SUCCEEDED":
        click.echo(f"error: {done.describe()}", err=True)
        sys.exit(EXIT_USER if done.exit_code == EXIT_USER else EXIT_FAILED)


def _report(state: dict[str, Any]) -> None:
    click.echo(f"done: {state['samples_committed']} images in {state['shards_committed']} shards "
               f"at {state['uri']} (job {state['job_id']})")


if __name__ == "__main__":
    main()
