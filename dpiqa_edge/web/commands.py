"""``dpiqa-edge serve DIR``: serve a web export so a browser (or a phone) can open it."""

from __future__ import annotations

from pathlib import Path

import click

from . import serve as server_module  # a module, not its names: tests replace serve.make_server


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. 0.0.0.0 lets other devices in: needs --allow-remote (the camera then needs "
                   "--cert/--key: HTTPS).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other machines can reach (plain HTTP unless "
              "--cert/--key; *.log files are then not served to them and export.json's local paths are hidden).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM) for HTTPS.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM) for HTTPS.")
@click.option("--quiet", is_flag=True, help="Do not log each request.")
def serve(folder: str, host: str, port: int, cert: str | None, key: str | None, quiet: bool, allow_remote: bool) -> None:
    """Serve a web export (dpiqa-edge export --target web) with the headers WASM threads need.

    \b
    Open the printed address in a browser on this machine. On a phone (the camera needs HTTPS or localhost):
      Android over USB:  adb reverse tcp:8000 tcp:8000   then open http://localhost:8000 on the phone
      any phone:         a tunnel that gives an https:// address for 127.0.0.1:8000
      same Wi-Fi:        dpiqa-edge serve DIR --host 0.0.0.0 --allow-remote --cert cert.pem --key key.pem
    Photos can be scored without HTTPS; only the live camera needs it.
    """
    server = server_module.make_server(folder, host, port, cert, key, quiet=quiet, allow_remote=allow_remote)
    url = server_module.url_of(server, https=bool(cert))
    if allow_remote and not server_module.is_loopback(host):
        click.secho(f"warning: listening on {host}: any machine that can reach it may load this page"
                    + ("" if cert else " over plain HTTP (unencrypted)"), fg="yellow", err=True)
    if not (Path(folder) / "model.onnx").is_file():
        click.secho(f"warning: {Path(folder) / 'model.onnx'} is missing: the page will say so", fg="yellow", err=True)
    click.echo(f"serving {folder} at {url} (cross-origin isolated: WASM threads on); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
