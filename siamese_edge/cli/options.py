"""Options shared by several commands, and printing helpers."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Callable

import click

from siamese_edge.errors import SiameseEdgeError

#: exit status when some inputs were skipped and the rest was done (enroll --from-dir, embed,
#: gallery reembed/verify); scripts can tell it from a failure (1) and a usage error (2)
EXIT_PARTIAL = 3

# The environment variables are what the container images set (Dockerfile*), so a command
# run there needs neither path.
model_option = click.option("--model", "-m", "model", required=True,
                            type=click.Path(dir_okay=False), envvar="SIAMESE_EDGE_MODEL",
                            show_envvar=True,
                            help="Exported ONNX model (siamese-edge export).")
gallery_option = click.option("--gallery", "-g", "gallery", required=True,
                              type=click.Path(dir_okay=False), envvar="SIAMESE_EDGE_GALLERY",
                              show_envvar=True,
                              help="Gallery file (SQLite); created by enroll.")


def parsed_by(parse: Callable[[str], object]) -> Callable:
    """A click callback that checks an option's text with ``parse`` (raising
    :class:`SiameseEdgeError`) and keeps the text: a bad value is then a usage error, exit 2,
    reported before any model is loaded or file read."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            try:
                parse(value)
            except SiameseEdgeError as exc:
                message = str(exc)
                for opt in param.opts:  # click names the option already
                    if message.startswith(f"{opt} "):
                        message = message[len(opt) + 1:]
                raise click.BadParameter(message) from None
        return value

    return check


def check_vote(text: str) -> None:
    from siamese_edge.camera.voting import KOfNVoter

    KOfNVoter.parse(text)


def check_roi(text: str) -> None:
    from siamese_edge.camera.detectors import parse_roi

    parse_roi(text)


def _backend_option_list(engine_from_env: bool) -> list:
    engine_help = ("TensorRT engine built from --model [default: $SIAMESE_EDGE_ENGINE, else "
                   "MODEL.engine]." if engine_from_env else
                   "TensorRT engine built from this --model [default: MODEL.engine].")
    return [
        click.option("--backend", type=click.Choice(["auto", "onnxruntime", "tensorrt"]),
                     default="auto", show_default=True,
                     help="auto: a fresh TensorRT engine if one is here, else ONNX Runtime "
                          "with the best execution provider that works."),
        click.option("--engine", type=click.Path(dir_okay=False),
                     envvar="SIAMESE_EDGE_ENGINE" if engine_from_env else None,
                     help=engine_help),
        click.option("--require-gpu", is_flag=True,
                     help="Fail instead of falling back to the CPU."),
        click.option("--rebuild-stale", is_flag=True,
                     help="Rebuild an engine made by another TensorRT, GPU or model."),
    ]


def backend_options(function):
    """``--backend``, ``--engine``, ``--require-gpu``, ``--rebuild-stale``: how to run a model."""
    for option in reversed(_backend_option_list(engine_from_env=True)):
        function = option(function)
    return function


def new_model_backend_options(function):
    """:func:`backend_options` for a command whose ``--model`` is another model than the one
    the environment names (``gallery reembed``): ``$SIAMESE_EDGE_ENGINE`` is that model's
    engine, and ``--rebuild-stale`` would overwrite it with the new model's."""
    for option in reversed(_backend_option_list(engine_from_env=False)):
        function = option(function)
    return function


def open_embedder(model: str, backend: str, batch_size: int, engine: str | None = None,
                  require_gpu: bool = False, rebuild_stale: bool = False):
    """The embedder the backend options ask for (not yet entered)."""
    from siamese_edge.runtime.backends import create_embedder

    return create_embedder(model, backend=backend, batch_size=batch_size, engine=engine,
                           require_gpu=require_gpu, rebuild_stale=rebuild_stale)
batch_option = click.option("--batch-size", default=64, show_default=True,
                            type=click.IntRange(1, 4096), help="Images per inference call.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON instead of text: one document.")
#: ``--json`` of the commands that take ``--camera``
camera_json_option = click.option("--json", "as_json", is_flag=True,
                                  help="Print JSON instead of text: one document (with "
                                       "--camera, one object per line: events, then the "
                                       "summary).")


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan and ±inf (a nan threshold rejects every probe), with an
    optional range as :class:`click.FloatRange`."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        # click would print "[x<=None]" in --help for an unbounded range
        return "" if self.min is None and self.max is None else super()._describe_range()


def json_text(document: object, indent: int | None = None) -> str:
    """``document`` as strict JSON; nan and ±inf, which JSON cannot spell, become null."""
    return json.dumps(_finite(document), indent=indent, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def threshold_origin(threshold: float | None, info) -> str:
    """Where the threshold a command decides with came from, for its ``--json``."""
    if threshold is not None:
        return "--threshold"
    return f"model: {info.threshold_source}" if info.threshold_source else "model"


def print_json(document: object) -> None:
    click.echo(json_text(document, indent=2))


def print_json_line(document: object) -> None:
    """One compact JSON document per line (camera events)."""
    click.echo(json_text(document))


def parse_metadata(text: str) -> dict:
    """A ``--metadata`` value: a JSON object, else a usage error."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg})", param_hint="metadata") from None
    except RecursionError:
        raise click.BadParameter("nested too deeply", param_hint="metadata") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object ({...})", param_hint="metadata")
    return value


def printable(text: str) -> str:
    """``text`` with control and format characters (escape sequences, bidi overrides)
    written as ``\\x1b``-style escapes: a stored source path came from a file name or an
    imported export, and printed raw it could clear or retitle the user's terminal."""
    return "".join(c if unicodedata.category(c)[0] != "C" else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
