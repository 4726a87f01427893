from click.testing import CliRunner

from dpiqa_edge.cli import main


def test_help_lists_the_road():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for cmd in ("data", "teacher", "distill", "prune", "export", "serve", "check", "report", "bench", "demo"):
        assert cmd in res.output
