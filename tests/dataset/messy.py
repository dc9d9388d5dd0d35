"""Builders for messy source folders and small datasets (all made in code, nothing checked in)."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pattern(w: int, h: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth, seed-dependent picture (distinct pHash per seed, compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.5, 4, 2).tolist() + [rng.uniform(0, 6.28)]
        chans.append(127 + 120 * np.sin(x / w * fx * 6.28 + ph) * np.cos(y / h * fy * 6.28))
    arr = np.stack(chans, -1).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    return im if mode == "RGB" else im.convert(mode)


def save(im: Image.Image, path: Path, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)
    return path


def png16_rgb(w: int, h: int) -> bytes:
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""
    arr = (np.linspace(0, 65535, w * h * 3).reshape(h, w, 3)).astype(">u2")
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def png_bomb(w: int = 30000, h: int = 30000) -> bytes:
    """A tiny PNG whose header claims ``w × h`` pixels."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:29])
    new = b"IHDR" + struct.pack(">II", w, h) + ihdr[12:]
    data[12:29] = new
    data[29:33] = struct.pack(">I", zlib.crc32(new) & 0xFFFFFFFF)
    return bytes(data)


def jpeg_with_orientation(w: int, h: int, orientation: int, seed: int = 0) -> bytes:
    im = pattern(w, h, seed)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def build_messy_sources(root: Path) -> dict[str, Path]:
    """Every case the importer must handle; returns named paths for the assertions."""
    src = root / "src"
    p: dict[str, Path] = {}
    p["bom_crlf"] = save(pattern(640, 480, 1), src / "photo one.jpg", quality=90)
    (src / "photo one.txt").write_bytes(b"\xef\xbb\xbfa red car,\r\nparked outside\r\n")
    p["unicode"] = save(pattern(320, 400, 2), src / "ünïcødé 猫.png")
    (src / "ünïcødé 猫.caption").write_bytes("猫, 日本, café".encode())
    p["rotated"] = src / "rotated.jpg"
    p["rotated"].write_bytes(jpeg_with_orientation(400, 300, 6, seed=3))
    (src / "rotated.txt").write_bytes(b"sideways photo")
    p["cmyk"] = save(pattern(200, 150, 4).convert("CMYK"), src / "print" / "cmyk.jpg")
    p["deep16"] = save(
        Image.fromarray((np.linspace(0, 65535, 128 * 96).reshape(96, 128)).astype(np.uint16)),
        src / "deep16.png",
    )
    p["rgb48"] = src / "rgb48.png"
    p["rgb48"].write_bytes(png16_rgb(64, 48))
    p["alpha_png"] = save(pattern(100, 100, 5, "RGBA"), src / "alpha.png")
    p["alpha_webp"] = save(pattern(120, 90, 6, "RGBA"), src / "alpha.webp", quality=90)
    p["bmp"] = save(pattern(90, 60, 7), src / "pic.bmp")
    p["tiff"] = save(pattern(160, 120, 8), src / "scan.tiff")
    frames = [pattern(64, 64, 9).convert("P"), pattern(64, 64, 10).convert("P")]
    p["gif"] = src / "anim.gif"
    frames[0].save(p["gif"], save_all=True, append_images=frames[1:], duration=100)
    good = io.BytesIO()
    pattern(300, 300, 11).save(good, "JPEG", quality=90)
    p["truncated"] = src / "broken" / "truncated.jpg"
    p["truncated"].parent.mkdir(parents=True, exist_ok=True)
    p["truncated"].write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    pngbuf = io.BytesIO()
    pattern(300, 300, 12).save(pngbuf, "PNG")
    raw = bytearray(pngbuf.getvalue())
    raw[200:400] = b"\x00" * 200
    p["corrupt"] = src / "broken" / "corrupt.png"
    p["corrupt"].write_bytes(bytes(raw))
    p["fake"] = src / "fake.png"
    p["fake"].write_text("this is not an image")
    p["orphan_caption"] = src / "orphan.txt"
    p["orphan_caption"].write_text("no image for me")
    p["bomb"] = src / "bomb.png"
    p["bomb"].write_bytes(png_bomb())
    p["latin"] = save(pattern(200, 200, 13), src / "latin.png")
    (src / "latin.txt").write_bytes("café crème, naïve".encode("cp1252"))
    # name clashes: the same stem in two folders, and an image + a caption of the same stem
    p["clash_a"] = save(pattern(128, 128, 14), src / "a" / "cat.jpg")
    (src / "a" / "cat.txt").write_text("cat from a")
    p["clash_b"] = save(pattern(128, 128, 15), src / "b" / "cat.jpg")
    (src / "b" / "cat.txt").write_text("cat from b")
    (src / ".hidden.png").write_bytes(b"ignored")
    # an archive with safe and unsafe members
    zp = root / "pack.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        b = io.BytesIO()
        pattern(96, 96, 16).save(b, "PNG")
        zf.writestr("good/dog.png", b.getvalue())
        zf.writestr("good/dog.txt", "a dog, in a zip")
        zf.writestr("../evil.png", b.getvalue())
        zf.writestr("/abs.png", b.getvalue())
        zf.writestr("sub/../../x.png", b.getvalue())
        zf.writestr("C:\\win.png", b.getvalue())
        zf.writestr("__MACOSX/good/._dog.png", b"junk")
    p["zip"] = zp
    return p


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under ``root``: (sha256, mtime_ns, mode) — to prove sources are untouched."""
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file():
            st = f.stat()
            out[str(f.relative_to(root))] = (
                hashlib.sha256(f.read_bytes()).hexdigest(),
                st.st_mtime_ns,
                st.st_mode,
            )
    return out


def make_dataset(
    folder: Path, n: int, size: tuple[int, int] = (64, 48), captions: bool = True, ext: str = ".png"
) -> Path:
    """A quick dataset: ``n`` small images (distinct content) with ``img NNNN`` names."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pattern(*size, seed=1000 + i).save(folder / f"img {i:04d}{ext}")
        if captions:
            (folder / f"img {i:04d}.txt").write_text(f"photo {i}, tag{i % 3}", encoding="utf-8")
    return folder


class WordTokenizer:
    """Stands in for Qwen3 in fast tests: one token per word (5 template tokens)."""

    chat_template = "x"

    def apply_chat_template(
        self, msgs, tokenize=False, add_generation_prompt=True, enable_thinking=True
    ):
        return "<|im_start|>user\n" + msgs[0]["content"] + "<|im_end|>\n<|im_start|>assistant\n"

    def __call__(self, text, add_special_tokens=True, **kw):
        if isinstance(text, list):
            return {"input_ids": [list(range(len(t.split()))) for t in text]}
        n = len(text.replace("<|im_start|>", " a ").replace("<|im_end|>", " a ").split())
        ids = list(range(n))
        if kw.get("truncation"):
            ids = ids[: kw["max_length"]]
        return {"input_ids": ids}
