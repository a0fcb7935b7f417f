"""Serve the viewer with uvicorn, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from simreal.errors import ConfigError


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False,
          serve_sources: bool = True, log_level: str = "warning") -> None:
    """Serve ``folder`` until interrupted."""
    import uvicorn

    from simreal.viewer.app import create_app

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: expected 0..65535, got {port}")
    app = create_app(folder, serve_sources=serve_sources)
    _check_port(host, port)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    print(f"simreal view: serving {Path(folder).resolve()} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def _check_port(host: str, port: int) -> None:
    """One clear line when the address cannot be bound (instead of uvicorn's log and exit)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
