import json
import struct

import pytest

from zitdesk.errors import FileFormatError
from zitdesk.st_header import read_header


def _write(path, header: dict, data: bytes = b"", declared: int | None = None):
    raw = json.dumps(header).encode()
    n = len(raw) if declared is None else declared
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def test_valid_header_with_metadata(tmp_path):
    h = {
        "__metadata__": {"ss_network_dim": "16"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    }
    info = read_header(_write(tmp_path / "x.safetensors", h, b"\0" * 16))
    assert info.tensors["a"].shape == (2, 2)
    assert info.metadata == {"ss_network_dim": "16"}


@pytest.mark.parametrize(
    "case,needle",
    [
        ("truncated", "truncated"),
        ("huge", "header size"),
        ("json", "not JSON"),
        ("offsets", "offsets"),
        ("short", "too small"),
        ("pickle", "pickle"),
        ("ckpt", "pickle"),
        ("mismatch", "size mismatch"),
    ],
)
def test_bad_files_get_plain_errors(tmp_path, case, needle):
    t = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    p = tmp_path / "bad.safetensors"
    if case == "truncated":
        _write(p, t, b"\0" * 7)
    elif case == "huge":
        _write(p, t, b"", declared=2**62)
    elif case == "json":
        p.write_bytes(struct.pack("<Q", 5) + b"{nope")
    elif case == "offsets":
        _write(p, {"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, b"\0" * 16)
    elif case == "short":
        p.write_bytes(b"abc")
    elif case == "pickle":
        p.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    elif case == "ckpt":
        p = tmp_path / "model.ckpt"
        p.write_bytes(b"\x80\x02" + b"\0" * 100)
    elif case == "mismatch":
        _write(p, {"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 16]}}, b"\0" * 16)
    with pytest.raises(FileFormatError) as err:
        read_header(p)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_header_length_starting_with_0x80_is_not_a_pickle(tmp_path):
    # A header of 128 + 256·k bytes starts with byte 0x80, like a pickle's PROTO opcode.
    base = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    raw = json.dumps(base).encode()
    pad = 384 - len(raw)
    raw = raw + b" " * pad
    assert len(raw) % 256 == 128
    p = tmp_path / "ok.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    assert p.read_bytes()[:1] == b"\x80"
    assert read_header(p).tensors["a"].shape == (1,)
