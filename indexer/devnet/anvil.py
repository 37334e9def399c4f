"""Start and stop an anvil node on a free loopback port."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from indexer.chain.rpc import RpcClient
from indexer.errors import IndexerError, RpcUnreachable

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Seconds to wait for a fresh anvil to answer eth_chainId, and for it to exit on SIGTERM.
ANVIL_START_TIMEOUT_SECONDS = 30.0
ANVIL_STOP_TIMEOUT_SECONDS = 10.0
# Block gas limit of the dev chain: high, so that a seeding block can hold thousands of transactions.
ANVIL_GAS_LIMIT = 10_000_000_000


class DevnetError(IndexerError):
    """The local chain could not be started, or a fixture transaction failed."""


_NPM_PLATFORMS = {("linux", "x86_64"): "linux-amd64", ("linux", "aarch64"): "linux-arm64", ("darwin", "x86_64"): "darwin-amd64", ("darwin", "arm64"): "darwin-arm64"}


def anvil_binary() -> str:
    """``INDEXER_ANVIL_BIN``, else the binary from npm's platform package, else anvil on PATH.

    The platform binary is run directly rather than through node_modules/.bin/anvil, a node wrapper
    that would stay between us and anvil (one more process to stop).
    """
    env = os.environ.get("INDEXER_ANVIL_BIN")
    if env:
        return env
    platform = _NPM_PLATFORMS.get((os.uname().sysname.lower(), os.uname().machine))
    if platform:
        binary = REPO_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{platform}" / "bin" / "anvil"
        if binary.exists():
            return str(binary)
    wrapper = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if wrapper.exists():
        return str(wrapper)
    found = shutil.which("anvil")
    if found:
        return found
    raise DevnetError("anvil not found: run `npm ci` in the repository (installs @foundry-rs/anvil) or set INDEXER_ANVIL_BIN")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """An anvil process; use as a context manager so it is always stopped."""

    def __init__(self, *, port: int | None = None, chain_id: int = 31337, timestamp: int | None = None) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.timestamp = timestamp
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Anvil:
        args = [
            anvil_binary(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--auto-impersonate",
            "--gas-limit", str(ANVIL_GAS_LIMIT),
            "--disable-code-size-limit",
            "--order", "fifo",
            "--silent",
        ]  # fmt: skip
        if self.timestamp is not None:
            args += ["--timestamp", str(self.timestamp)]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rpc = RpcClient(self.url, max_attempts=1, timeout=2.0)
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_SECONDS
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise DevnetError(f"anvil exited at start (code {self._proc.returncode}): {err.strip()[:500]}")
            try:
                rpc.chain_id()
                break
            except RpcUnreachable:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DevnetError(f"anvil did not answer on port {self.port} within {ANVIL_START_TIMEOUT_SECONDS}s") from None
                time.sleep(0.05)
        log.info("anvil started port=%d pid=%d", self.port, self._proc.pid)
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=ANVIL_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        log.info("anvil stopped port=%d", self.port)
        self._proc = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
