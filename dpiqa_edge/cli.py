"""``dpiqa-edge``: the command line. One click group; each stage owns its commands in
``dpiqa_edge/<stage>/commands.py`` (thin wrappers that parse options and call the stage), so the CLI
shows the road and no command hides work of its own.

Exit codes (DESIGN.md): 0 success; 1 some input fails the gate or cannot be read (each named);
2 usage error, or a model/config that cannot be loaded. Errors are one line, never a traceback
(``DPIQA_TRACEBACK=1`` shows it for debugging).
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .authors.commands import import_
from .bench.commands import bench
from .data.commands import data
from .default_model.build import default_model
from .demo import demo
from .distill.commands import distill
from .errors import EXTRAS, DpiqaError, missing_extra, printable
from .export.commands import export
from .quantize.commands import prune
from .quiet import set_verbose
from .report.commands import report
from .runtime.commands import check
from .teacher.commands import teacher
from .web.commands import serve


def _epilog() -> str:
    extras = "\n".join(f"  [{name}]{' ' * (10 - len(name))}{what}" for name, what in EXTRAS.items())
    return ("\b\nThe road:  data synth -> teacher train -> teacher score -> distill -> prune -> export -> check / report / serve\n"
            "Quick start:  dpiqa-edge check photo.jpg   (the shipped model; works on a plain pip install)\n"
            "              dpiqa-edge demo              (the whole road on the embedded default set)\n\n"
            "\b\nExtras (pip install 'dpiqa-edge[EXTRA]'); the base install runs check, serve and QualityScorer:\n" + extras)


EPILOG = _epilog()


class _Group(click.Group):
    """Maps :class:`DpiqaError` to its exit code with a one-line message."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DpiqaError as exc:
            if os.environ.get("DPIQA_TRACEBACK"):
                raise
            click.secho(f"error: {printable(exc)}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except ImportError as exc:  # an optional dependency not installed: one line naming the extra, exit 2
            err = missing_extra(exc, f"dpiqa-edge {ctx.invoked_subcommand or ''}".strip(), ctx.invoked_subcommand)
            if err is None or os.environ.get("DPIQA_TRACEBACK"):
                raise
            click.secho(f"error: {err}", fg="red", err=True)
            ctx.exit(err.exit_code)
        except (OSError, MemoryError, RecursionError) as exc:
            # the last net under "one line, never a traceback": a file the OS refuses, memory that runs out
            if os.environ.get("DPIQA_TRACEBACK"):
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            what = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            click.secho(f"error: {printable(where + ' '.join(str(what).split()))}", fg="red", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.secho("interrupted: artifacts already written are intact; training resumes from its last checkpoint", err=True)
            ctx.exit(130)

    def list_commands(self, ctx):  # keep the order of the road, not alphabetical
        return list(self.commands)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dpiqa-edge")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the libraries' own logs and progress bars (NNCF, coremltools, torch, OpenVINO, "
                   "onnxruntime). By default they go to third-party.log in the output folder.")
def main(verbose: bool) -> None:
    """DP-IQA from research to phones: blind image quality on 0-100 (higher = better)."""
    if verbose:
        set_verbose()


def _register() -> None:
    # the command modules are imported at the top: they import torch and the other extras only inside the
    # command body, so a plain pip install lists and runs every command it can
    for cmd in (data, teacher, distill, prune, export, serve, check, report, import_, bench, demo, default_model):
        main.add_command(cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
