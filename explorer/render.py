"""Rendering to PIL: one digit, strips and grids captioned with P(real), animated GIFs."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT = ImageFont.load_default()


def to_uint8(img01: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(img01, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def digit(img01: np.ndarray, size: int = 280) -> Image.Image:
    """One (28,28) image in [0,1] -> a crisp enlarged grayscale PIL image."""
    im = Image.fromarray(to_uint8(np.asarray(img01).reshape(28, 28)), mode="L")
    return im.resize((size, size), Image.NEAREST)


def _score_color(p: float) -> tuple[int, int, int]:
    # red (fake-looking) -> green (real-looking)
    p = float(np.clip(p, 0, 1))
    return int(220 * (1 - p) + 30 * p), int(60 * (1 - p) + 170 * p), 60


def grid(images01: np.ndarray, scores: np.ndarray | None = None, row_labels: list[str] | None = None,
         cell: int = 84, pad: int = 4, label_w: int = 0) -> Image.Image:
    """(R, C, 28, 28) images -> one RGB grid; each cell captioned with its P(real)."""
    imgs = np.asarray(images01)
    if imgs.ndim == 3:
        imgs = imgs[None]
    rows, cols = imgs.shape[:2]
    cap = 14 if scores is not None else 0
    label_w = label_w or (70 if row_labels else 0)
    w = label_w + cols * (cell + pad) + pad
    h = rows * (cell + cap + pad) + pad
    out = Image.new("RGB", (w, h), (250, 250, 250))
    draw = ImageDraw.Draw(out)
    u8 = to_uint8(imgs)
    for r in range(rows):
        y = pad + r * (cell + cap + pad)
        if row_labels:
            draw.text((6, y + cell // 2 - 6), row_labels[r], fill=(20, 20, 20), font=_FONT)
        for c in range(cols):
            x = label_w + pad + c * (cell + pad)
            out.paste(Image.fromarray(u8[r, c], mode="L").resize((cell, cell), Image.NEAREST), (x, y))
            if scores is not None:
                p = float(np.asarray(scores)[r, c] if np.ndim(scores) == 2 else np.asarray(scores)[c])
                draw.text((x + 2, y + cell + 1), f"P(real) {p:.2f}", fill=_score_color(p), font=_FONT)
    return out


def strip(images01: np.ndarray, scores: np.ndarray, cell: int = 84) -> Image.Image:
    return grid(np.asarray(images01)[None], np.asarray(scores)[None], cell=cell)


def gif_bytes(images01: np.ndarray, scores: np.ndarray | None = None, size: int = 168,
              ms_per_frame: int = 90, bounce: bool = True) -> bytes:
    """An animated GIF of the frames (there and back), each with its score in the corner."""
    frames = []
    for i, im in enumerate(np.asarray(images01)):
        f = digit(im, size).convert("RGB")
        if scores is not None:
            ImageDraw.Draw(f).text((4, 4), f"P(real) {float(scores[i]):.2f}",
                                   fill=_score_color(float(scores[i])), font=_FONT)
        frames.append(f.convert("P", palette=Image.ADAPTIVE))
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=ms_per_frame, loop=0)
    return buf.getvalue()
