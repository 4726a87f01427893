"""``dpiqa-edge bench``: latency / size / memory measurements, written to BENCHMARKS.md by the harness."""

from __future__ import annotations

import click
from .. import bench as harness  # the registry read at call time (tests and plugins replace harness.BENCHMARKS)


@click.command()
@click.option("--quick", is_flag=True, help="Fewer repeats (a smoke of the harness, numbers noisier).")
@click.option("--out", "out_file", default="BENCHMARKS.md", show_default=True, type=click.Path(dir_okay=False),
              help="Markdown to write; results are merged into a .json beside it, so --only keeps other sections.")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this benchmark (repeatable). See --list.")
@click.option("--list", "list_only", is_flag=True, help="List the registered benchmarks and exit.")
@click.option("--merge", "merge_file", type=click.Path(dir_okay=False, exists=True), metavar="JSON",
              help="Time nothing: copy the sections of another machine's BENCHMARKS.json (all, or --only NAME) "
                   "into --out, each labelled with the machine that measured it.")
def bench(quick: bool, out_file: str, only: tuple[str, ...], list_only: bool, merge_file: str | None) -> None:
    """Time the road's steps on this machine (warm-up, repeated runs, median/p95, ratios, peak memory)
    and write BENCHMARKS.md with the machine's CPU, ISA flags and library versions.

    \b
    Examples:
      dpiqa-edge bench                 every registered benchmark
      dpiqa-edge bench --only decode   decoding + preprocessing only, other sections kept

    \b
    On a lent GPU box (teacher_gpu measures only where CUDA is; elsewhere its stored section is kept):
      dpiqa-edge bench --only teacher_gpu --out gpu/BENCHMARKS.md
    then here:
      dpiqa-edge bench --merge gpu/BENCHMARKS.json
    """
    if list_only:
        for name, target in harness.BENCHMARKS.items():
            click.echo(f"{name:20s} {target}")
        return
    command = "dpiqa-edge bench" + (" --quick" if quick else "") + "".join(f" --only {n}" for n in only)
    if merge_file:
        path = harness.merge_benchmarks(out_file, merge_file, command=command + f" --merge {merge_file}", names=list(only) or None)
        click.echo(f"wrote {path} (merged from {merge_file})")
        return
    path = harness.run_benchmarks(out_file, list(only) or None, quick=quick, command=command, log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {path}")
