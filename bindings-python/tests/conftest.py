"""Starts the real `proliferate-server` (real OpenCode, scripted model) once for the suite."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

import proliferate
from proliferate import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def server_program() -> str:
    """The server binary: `PROLIFERATE_SERVER_BIN`, or the one `cargo build` put in the target."""
    if program := os.environ.get("PROLIFERATE_SERVER_BIN"):
        return program
    cache = pathlib.Path(os.environ.get("PROLIFERATE_CACHE", pathlib.Path.home() / ".cache/proliferate"))
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", cache / "target"))
    return str(target / "debug" / "proliferate-server")


class Server:
    """A running server and a way to mint its tokens."""

    def __init__(self, data_dir: pathlib.Path, *settings: str):
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [server_program(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), *settings],
            stdout=subprocess.PIPE,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            text=True,
        )
        # The first line that says where it listens; log lines may come before it.
        line = ""
        while "listening on " not in line:
            line = self.process.stdout.readline()
            assert line, "the server exited before it listened"
        self.url = line.strip().rsplit(" ", 1)[-1]
        # Keep reading, so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def token(self, subject: str = "tester", organization: str = "acme", ttl_secs: int = 86400) -> str:
        return subprocess.run(
            [server_program(), "token", "--data-dir", str(self.data_dir), "--subject", subject,
             "--organization", organization, "--scopes", "read,write,admin", "--ttl-secs", str(ttl_secs)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()

    def service_secret(self) -> str:
        return (self.data_dir / "secrets" / "service").read_text().strip()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="proliferate-python-") as data_dir:
        running = Server(pathlib.Path(data_dir))
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session")
def token(server: Server) -> str:
    return server.token()


@pytest.fixture
def client(server: Server, token: str) -> proliferate.Client:
    return proliferate.Client(server.url, token=token, source="python-tests")


async def until_running(connection: proliferate.Connection) -> None:
    """Reads updates until the session's agent is up."""
    async with asyncio.timeout(120):
        async for update in connection.updates():
            if isinstance(update, types.Welcome) and update.status == "running":
                return
            if isinstance(update, types.EventEnvelope) and isinstance(update.event, types.StatusChanged):
                assert update.event.status != "failed", f"the session failed: {update.event.reason}"
                if update.event.status == "running":
                    return
    raise AssertionError("the connection closed before the session ran")
