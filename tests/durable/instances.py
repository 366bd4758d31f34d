"""Relay instances as separate processes: ``python -m deltaflow relay`` under uvicorn, killed or stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from tests.durable.redis_server import free_port


class RelayProcess:
    def __init__(self, *arguments: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._arguments = arguments
        self._process: subprocess.Popen[bytes] | None = None
        # a file, not a pipe: a pipe nobody reads would block the process once full
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process

    def start(self) -> RelayProcess:
        command = [sys.executable, "-m", "deltaflow", "relay", "--port", str(self.port), *self._arguments]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
        self._process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the relay instance did not start: {self.stderr()}") from None
                time.sleep(0.05)

    def stderr(self) -> str:
        """What the process wrote on stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the producer dies without a word, as a crashed machine would."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None

    def interrupt(self, grace: float = 15) -> int:
        """SIGINT, as Ctrl+C; returns the exit status."""
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        status = self._process.wait(grace)
        self._process = None
        return status

    def assert_no_traceback(self) -> None:
        """Fails when the process logged a traceback (any exception the relay did not handle)."""
        log = self.stderr()
        assert "Traceback" not in log, log
        assert "CancelledError" not in log, log

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if exc_info[0] is None:
            self.assert_no_traceback()
