"""``siamese-edge bench``: latency p50/p99 and throughput of every backend that works here."""

from __future__ import annotations

import click

from siamese_edge.cli.options import json_option, print_json

#: the largest --batch (as --batch-size of the other commands)
MAX_BATCH = 4096


def _int_list(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        numbers = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise click.BadParameter("batch sizes must be positive")
    if max(numbers) > MAX_BATCH:  # the random batch alone would exhaust memory: a traceback
        raise click.BadParameter(f"batch sizes above {MAX_BATCH} are not timed")
    return numbers


def _name_list(ctx: click.Context, param: click.Parameter, value: str | None):
    if not value:
        return None
    from siamese_edge.benchmarking import BACKENDS

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)} (choose from "
                                 f"{', '.join(BACKENDS)})")
    return names


#: image formats ``--plot`` writes (matplotlib's, by suffix)
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


@click.command("bench")
@click.option("--model", "-m", "model", required=True, type=click.Path(dir_okay=False),
              envvar="SIAMESE_EDGE_MODEL", show_envvar=True,
              help="Exported ONNX model (siamese-edge export).")
@click.option("--batch", "batches", default="1,8,32", show_default=True, callback=_int_list,
              help="Batch sizes, comma-separated.")
@click.option("--iterations", default=50, show_default=True, type=click.IntRange(1),
              help="Timed calls per backend and batch.")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0),
              help="Untimed calls per backend and batch first.")
@click.option("--threads", default=None, type=click.IntRange(1),
              help="Intra-op threads of ONNX Runtime and torch [default: theirs].")
@click.option("--pin", is_flag=True, help="Pin the process to the first --threads CPUs.")
@click.option("--backends", default=None, callback=_name_list,
              help="Comma-separated subset of onnxruntime-cpu, onnxruntime-cuda, "
                   "onnxruntime-tensorrt, tensorrt, torch [default: every one that works].")
@click.option("--run", "run_dir", default=None, type=click.Path(file_okay=False),
              help="The model's training run: times its torch twin (needs the train extra).")
@click.option("--engine", default=None, type=click.Path(dir_okay=False),
              envvar="SIAMESE_EDGE_ENGINE", show_envvar=True,
              help="TensorRT engine for the native backend [default: MODEL.engine].")
@click.option("--gallery-size", default=10000, show_default=True, type=click.IntRange(1),
              help="Templates in the random gallery searched.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1),
              help="Candidates per query in the gallery search.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="Also write a PNG bar chart of images/s (needs matplotlib).")
@json_option
def bench(model: str, batches, iterations: int, warmup: int, threads: int | None, pin: bool,
          backends, run_dir: str | None, engine: str | None, gallery_size: int, top_k: int,
          plot_path: str | None, as_json: bool) -> None:
    """Time every backend that works here side by side (interleaved per round), against a
    bare ONNX Runtime session on prepared tensors; preprocessing and gallery search are
    timed separately."""
    from pathlib import Path

    from siamese_edge.benchmarking import BenchConfig, format_report, plot_report, \
        run_benchmark
    from siamese_edge.errors import InvalidInputError

    if pin and not threads:  # pinning to "the first --threads CPUs" needs a number
        raise click.UsageError("--pin needs --threads N: it pins to the first N CPUs")
    if plot_path and not Path(plot_path).parent.is_dir():  # known before minutes of timing
        raise InvalidInputError(f"--plot {plot_path}: folder {Path(plot_path).parent} "
                                f"does not exist")
    if plot_path and Path(plot_path).suffix.lower() not in PLOT_SUFFIXES:
        raise InvalidInputError(f"--plot {plot_path}: use {', '.join(PLOT_SUFFIXES)}")
    config = BenchConfig(model=model, batches=batches, iterations=iterations, warmup=warmup,
                         threads=threads, pin=pin, backends=backends, run_dir=run_dir,
                         engine=engine, gallery_size=gallery_size, top_k=top_k)
    # progress lines on stderr, not "warning:" lines (skipped backends are in the report)
    report = run_benchmark(config, log=(lambda message: click.echo(message, err=True))
                           if backends else (lambda message: None))
    plot_error = None
    if plot_path:  # drawn first so --json can say where it went, or why it did not
        try:
            plot_report(report, plot_path)
            report["plot"] = str(plot_path)
        except (OSError, ValueError) as exc:  # ValueError: matplotlib refusing the file
            plot_error = (f"--plot {plot_path}: cannot write "
                          f"({getattr(exc, 'strerror', None) or exc})")
            report["error"] = plot_error
    if as_json:  # the results whatever became of the plot
        print_json(report)
    else:
        click.echo(format_report(report))
        if plot_path and not plot_error:
            click.echo(f"wrote {plot_path}")
    if plot_error:
        raise InvalidInputError(plot_error)
