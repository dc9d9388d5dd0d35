"""Shared helpers of the fault-injection tests: a disk that fills up, a process killed at a
chosen write, tiny real images, and the run's counters (printed as one line at the end).

* :class:`FaultyDisk` makes ``os.write`` (a torn, partial write), buffered file writes (every
  :func:`zitdesk.io.atomic_write`), ``os.fsync``, ``os.replace`` and ``os.link`` fail with
  ``ENOSPC`` (always, or with a seeded probability), in this process.
* :func:`run_killed` forks, counts the child's write-like calls and SIGKILLs it at call ``at``
  (half of the bytes of a write are written first), so a kill lands inside the writer code, not
  somewhere in the interpreter; ``at=None`` runs to the end and returns the number of calls.
* :data:`COUNTS` collects trials, files checked and losses; ``pytest_terminal_summary`` prints
  ``faults: N trials, M files checked, lost = L``.
"""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass
class Counts:
    trials: int = 0
    files: int = 0
    lost: int = 0

    def line(self) -> str:
        return f"faults: {self.trials} trials, {self.files} files checked, lost = {self.lost}"


COUNTS = Counts()


@pytest.fixture
def counts() -> Counts:
    return COUNTS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if COUNTS.trials:
        terminalreporter.write_line(COUNTS.line())


def tiny_png(seed: int, size: tuple[int, int] = (16, 12)) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def png() -> Callable[..., bytes]:
    return tiny_png


# --- a full disk ---------------------------------------------------------------------------


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


class _FailingFile:
    """A file object whose writes may fail like a full disk (half written, then ENOSPC)."""

    def __init__(self, fh, disk: FaultyDisk) -> None:
        self._fh, self._disk = fh, disk

    def write(self, data):
        if self._disk.fails():
            self._fh.write(data[: len(data) // 2])
            self._fh.flush()
            raise _enospc()
        return self._fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False

    def __getattr__(self, name):
        return getattr(self._fh, name)


class FaultyDisk:
    """ENOSPC on write-like calls: always while :attr:`full`, else with probability ``p``."""

    def __init__(self, monkeypatch, rng: random.Random, p: float = 0.0) -> None:
        self.rng, self.p, self.full, self.off = rng, p, False, False
        self.failures = 0
        real = {n: getattr(os, n) for n in ("write", "fsync", "replace", "link", "fdopen")}
        self.real = real

        def write(fd, data):
            if self.fails():
                if len(data) > 1:
                    real["write"](fd, bytes(data[: len(data) // 2]))
                raise _enospc()
            return real["write"](fd, data)

        def fsync(fd):
            if self.fails():
                raise _enospc()
            return real["fsync"](fd)

        def replace(a, b, **kw):
            if self.fails():
                raise _enospc()
            return real["replace"](a, b, **kw)

        def link(a, b, **kw):
            if self.fails():
                raise _enospc()
            return real["link"](a, b, **kw)

        def fdopen(fd, mode="r", *a, **kw):
            fh = real["fdopen"](fd, mode, *a, **kw)
            return _FailingFile(fh, self) if ("w" in mode or "a" in mode) else fh

        for name, fn in (
            ("write", write),
            ("fsync", fsync),
            ("replace", replace),
            ("link", link),
            ("fdopen", fdopen),
        ):
            monkeypatch.setattr(os, name, fn)

    def fails(self) -> bool:
        if self.off:
            return False
        bad = self.full or (self.p > 0 and self.rng.random() < self.p)
        self.failures += bad
        return bad


@pytest.fixture
def faulty_disk(monkeypatch) -> Callable[..., FaultyDisk]:
    return lambda rng, p=0.0: FaultyDisk(monkeypatch, rng, p)


# --- SIGKILL at a chosen write ---------------------------------------------------------------


class _KillSwitch:
    def __init__(self, at: int | None) -> None:
        self.at, self.n = at, 0
        self.real = {
            n: getattr(os, n)
            for n in ("write", "fsync", "replace", "link", "unlink", "ftruncate", "fdopen")
        }

    def tick(self) -> bool:
        self.n += 1
        return self.at is not None and self.n >= self.at

    @staticmethod
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        real, ks = self.real, self

        def write(fd, data):
            if ks.tick():
                if len(data) > 1:
                    real["write"](fd, bytes(data[: len(data) // 2]))
                ks.die()
            return real["write"](fd, data)

        def before(name):
            def fn(*a, **kw):
                if ks.tick():
                    ks.die()
                return real[name](*a, **kw)

            return fn

        class _File:
            def __init__(self, fh):
                self._fh = fh

            def write(self, data):
                if ks.tick():
                    self._fh.write(data[: len(data) // 2])
                    self._fh.flush()
                    ks.die()
                return self._fh.write(data)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._fh.close()
                return False

            def __getattr__(self, name):
                return getattr(self._fh, name)

        def fdopen(fd, mode="r", *a, **kw):
            fh = real["fdopen"](fd, mode, *a, **kw)
            return _File(fh) if ("w" in mode or "a" in mode) else fh

        os.write = write
        for name in ("fsync", "replace", "link", "unlink", "ftruncate"):
            setattr(os, name, before(name))
        os.fdopen = fdopen


@dataclass
class KillResult:
    killed: bool
    acks: list[str]
    calls: int


def run_killed(
    fn: Callable[[Callable[[str], None]], None], at: int | None, timeout_s: float = 60.0
) -> KillResult:
    """Run ``fn(ack)`` in a forked child, SIGKILLed at its ``at``-th write-like call.

    ``ack(text)`` reports progress to the parent (written before the child goes on)."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 0
        try:
            os.close(r)
            signal.alarm(int(timeout_s))  # a child that hangs dies (and the trial fails)
            ks = _KillSwitch(at)
            real_write = ks.real["write"]

            def ack(text: str) -> None:
                real_write(w, (text + "\n").encode())

            ks.install()
            fn(ack)
            real_write(w, f"#calls {ks.n}\n".encode())
        except BaseException as exc:  # noqa: BLE001
            try:
                os.write(w, f"#error {type(exc).__name__}: {exc}\n".encode())
            except BaseException:  # noqa: BLE001
                pass
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as fh:
        while True:
            b = fh.read(65536)
            if not b:
                break
            chunks.append(b)
    _pid, status = os.waitpid(pid, 0)
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    errors = [x for x in lines if x.startswith("#error")]
    assert not errors, errors
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if not killed:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    calls = [int(x.split()[1]) for x in lines if x.startswith("#calls")]
    return KillResult(
        killed, [x for x in lines if not x.startswith("#")], calls[0] if calls else -1
    )


@pytest.fixture
def killed_run() -> Callable[..., KillResult]:
    return run_killed
