"""The ``siamese-edge`` command line. Commands are imported only when run, so
``siamese-edge verify --help`` loads neither torch nor any training module."""

from __future__ import annotations

import errno
import importlib
import sqlite3
import sys

import click

from siamese_edge import __version__
from siamese_edge.errors import SiameseEdgeError

#: command name -> "module:attribute"; a command's module is imported on first use.
COMMANDS = {
    "train": "siamese_edge.cli.train:train",
    "export": "siamese_edge.cli.export:export",
    "enroll": "siamese_edge.cli.enroll:enroll",
    "gallery": "siamese_edge.cli.gallery:gallery",
    "verify": "siamese_edge.cli.verify:verify",
    "compare": "siamese_edge.cli.compare:compare",
    "embed": "siamese_edge.cli.embed:embed",
    "evaluate": "siamese_edge.cli.evaluate:evaluate",
    "engine": "siamese_edge.cli.engine:build_engine_command",
    "doctor": "siamese_edge.cli.doctor:doctor",
    "bench": "siamese_edge.cli.bench:bench",
}


class UserError(click.ClickException):
    """A :class:`SiameseEdgeError` shown as one line, ``error: ...``, with its exit code."""

    def __init__(self, error: SiameseEdgeError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Interrupted(click.ClickException):
    """Ctrl-C: ``interrupted`` and exit status 130, as shells report SIGINT. Click's own
    handling would print ``Aborted!`` and exit 1, like any failure."""

    exit_code = 130

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "interrupted")  # a command may say how to go on

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SiameseEdgeError as exc:
            raise UserError(exc) from None
        except sqlite3.Error as exc:  # a safety net: the gallery names the file and cause
            raise UserError(SiameseEdgeError(f"gallery database: {exc}")) from None
        except KeyboardInterrupt as exc:
            raise Interrupted(str(exc)) from None
        except MemoryError:  # numpy's allocation failures are MemoryErrors too
            raise UserError(SiameseEdgeError("out of memory: the input is too large for "
                                             "this machine")) from None
        except RecursionError:
            raise UserError(SiameseEdgeError("data nested too deeply to handle")) from None
        except OSError as exc:  # a safety net: a file that cannot be read or written
            if exc.errno == errno.EPIPE:  # `| head` closed the pipe: click ends quietly
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise UserError(SiameseEdgeError(f"{where}{exc.strerror or exc}")) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="siamese-edge")
def cli() -> None:
    """Train, export and deploy Siamese verification models.

    \b
    train -> export -> enroll -> verify
    Run 'siamese-edge COMMAND --help' for each command.
    """


def main() -> None:
    try:
        cli.main(prog_name="siamese-edge")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
