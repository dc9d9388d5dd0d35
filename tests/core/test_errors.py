"""errors.user_message / describe_os_error: any exception → one sentence that says what to do."""

from __future__ import annotations

import errno
import os

import pytest

from zitdesk.errors import LoraError, describe_os_error, user_message


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EDQUOT, "disk is full"),
        (errno.EROFS, "read-only disk"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.ENAMETOOLONG, "too long"),
        (errno.ENOTDIR, "is a file, not a folder"),
        (errno.EISDIR, "is a folder"),
        (errno.ENOENT, "does not exist"),
        (errno.EIO, "read/write error"),
        (errno.EMFILE, "too many files"),
    ],
)
def test_os_errors_say_what_to_do(code, words):
    msg = user_message(OSError(code, os.strerror(code), "/data/out/x.png"))
    assert words in msg.lower()
    assert "\n" not in msg and msg.endswith(".")
    if code not in (errno.EMFILE,):
        assert "/data/out/x.png" in msg


def test_exists_as_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert "is a file, not a folder" in describe_os_error(
        FileExistsError(errno.EEXIST, "exists", str(f))
    )


@pytest.mark.parametrize(
    "text",
    [
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })',
        "[Errno 28] No space left on device",
        "No space left on device (os error 28)",
        "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: file write failed",
    ],
)
def test_wrapped_disk_full_errors(text):
    class SafetensorError(Exception):
        pass

    msg = user_message(SafetensorError(text))
    assert "disk is full" in msg and "SafetensorError" not in msg and "\n" not in msg


@pytest.mark.parametrize(
    "exc",
    [
        AssertionError("Torch not compiled with CUDA enabled"),
        RuntimeError(
            "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU"
        ),
        RuntimeError(
            "CUDA error: invalid device ordinal\nCUDA kernel errors might be asynchronously"
        ),
        RuntimeError("No CUDA GPUs are available"),
    ],
)
def test_cuda_missing(exc):
    msg = user_message(exc)
    assert "--device cpu" in msg and "\n" not in msg


def test_other_errors_are_one_line_without_cpp_stack():
    exc = RuntimeError(
        "shape '[2, 3]' is invalid\nException raised from reshape at c10/core/x.cpp:12"
    )
    msg = user_message(exc)
    assert "\n" not in msg and "c10" not in msg and "Exception raised from" not in msg
    assert "unexpected error" not in msg and "ZITDESK_DEBUG=1" in msg


def test_zitdesk_errors_pass_through_and_recursion_is_named():
    assert user_message(LoraError("x.safetensors is damaged.")) == "x.safetensors is damaged."
    assert "nested too deeply" in user_message(RecursionError("maximum recursion depth exceeded"))
    assert "not UTF-8 text" in user_message(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))
