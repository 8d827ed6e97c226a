"""Rendering to PIL: one image, strips and grids captioned with P(real), animated GIFs.

An image is (H, W) grey or (H, W, 3) colour, floats in [0, 1], any size (run.json's image_shape).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT = ImageFont.load_default(size=12)
_LABEL_FONT = ImageFont.load_default(size=14)
HIGHLIGHT = (30, 120, 220)


def to_uint8(img01: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(img01, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _cell(img01: np.ndarray) -> Image.Image:
    """One (H,W) / (H,W,1) grey or (H,W,3) colour image in [0,1] -> a PIL image at its own size."""
    a = np.asarray(img01, np.float32)
    if a.ndim == 1:  # a flat MNIST digit
        a = a.reshape(28, 28)
    elif a.ndim >= 3 and a.shape[-1] in (1, 3):
        a = a.reshape(a.shape[-3:])
        a = a[..., 0] if a.shape[-1] == 1 else a
    else:
        a = a.reshape(a.shape[-2:])
    return Image.fromarray(to_uint8(a), mode="L" if a.ndim == 2 else "RGB")


def digit(img01: np.ndarray, size: int = 280) -> Image.Image:
    """One image (grey or colour, any size) in [0,1] -> a crisp enlarged PIL image ``size`` px wide."""
    im = _cell(img01)
    return im.resize((size, round(size * im.height / im.width)), Image.NEAREST)


def crisp(px: int, side: int) -> int:
    """A display size for ``side``-px images near ``px``: a whole multiple of the side, so every
    pixel is drawn the same size (28 px digits keep the sizes they always had)."""
    return int(px) if side == 28 or px % side == 0 else side * max(1, round(px / side))


SAL_FAKE, SAL_REAL = (230, 40, 40), (40, 120, 255)  # red: more ink here looks more fake; blue: more real


def saliency_overlay(img01: np.ndarray, grad: np.ndarray, size: int = 280) -> Image.Image:
    """A grey (28,28) digit with D's pixel gradient over it as a colour map -> RGB PIL image.

    Red where more ink would lower D's logit (D sees "fake" there), blue where it would raise it;
    the more opaque, the larger the gradient (relative to this image's largest). A gradient of
    zero everywhere (or not finite) leaves the digit as it is."""
    grey = np.clip(np.asarray(img01, np.float32).reshape(28, 28), 0.0, 1.0)
    g = np.nan_to_num(np.asarray(grad, np.float32).reshape(28, 28), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(np.abs(g).max())
    alpha = 0.85 * np.sqrt(np.abs(g) / top) if top > 0 else np.zeros_like(g)  # sqrt: faint areas show
    colour = np.where((g < 0)[..., None], np.float32(SAL_FAKE), np.float32(SAL_REAL)) / 255.0
    rgb = grey[..., None] * (1 - alpha[..., None]) + colour * alpha[..., None]
    im = Image.fromarray(to_uint8(rgb), mode="RGB")
    return im.resize((size, size), Image.NEAREST)


def _score_color(p: float) -> tuple[int, int, int]:
    # red (fake-looking) -> green (real-looking); grey when there is no number to show
    p = float(p)
    if not np.isfinite(p):
        return 120, 120, 120
    p = min(max(p, 0.0), 1.0)
    return int(200 * (1 - p) + 20 * p), int(40 * (1 - p) + 140 * p), 40


VERDICTS = ((0.8, "looks real to D"), (0.6, "leans real"), (0.4, "a coin flip for D"), (0.2, "leans fake"))


def verdict(p: float) -> str:
    """D's verdict graded, so that P(real) 0.46 reads as the coin flip it is, not as "fake"."""
    p = float(p)
    if not np.isfinite(p):
        return "no verdict"
    return next((word for bound, word in VERDICTS if p >= bound), "looks fake to D")


def _text_w(text: str, font=_FONT) -> int:
    return int(font.getbbox(text)[2])


def grid(
    images01: np.ndarray,
    scores: np.ndarray | None = None,
    row_labels: list[str] | None = None,
    cell: int = 84,
    pad: int = 6,
    label_w: int = 0,
    scores2: np.ndarray | None = None,
    score_name: str = "P(real)",
    score2_name: str = "final D",
    highlight_rows: tuple[int, ...] = (),
    count: int | None = None,
    col_labels: list[str] | None = None,
) -> Image.Image:
    """(R, C, H, W) grey or (R, C, H, W, 3) colour images -> one RGB grid; each cell captioned
    with its P(real).

    ``scores2`` adds a second caption line (e.g. P(real) by the final epoch's D);
    ``highlight_rows`` frames rows (e.g. the best epoch) in blue; ``count`` draws only the first
    cells (row-major), leaving the rest of the last row empty; ``col_labels`` heads the columns.
    """
    imgs = np.asarray(images01)
    if imgs.ndim == 3 + (imgs.shape[-1] == 3):  # one row
        imgs = imgs[None]
    rows, cols = imgs.shape[:2]
    cell = crisp(cell, imgs.shape[2])

    def as2d(s):
        return None if s is None else np.asarray(s, np.float64).reshape(rows, cols)

    scores, scores2 = as2d(scores), as2d(scores2)
    line = 15
    cap = line * ((scores is not None) + (scores2 is not None))
    cell = max(
        int(cell),
        _text_w(f"{score2_name} 0.00") + 4 if scores2 is not None else 0,
        _text_w(f"{score_name} 0.00") + 4 if scores is not None else 0,
    )
    if row_labels:
        label_w = (
            label_w
            or max(_text_w(line_, _LABEL_FONT) for t in row_labels for line_ in t.splitlines() or [""]) + 16
        )
    w = label_w + cols * (cell + pad) + pad
    head = 18 if col_labels else 0
    h = head + rows * (cell + cap + pad) + pad
    out = Image.new("RGB", (w, h), (250, 250, 250))
    # where the cells are, for cell_at (a click on the picture -> the cell under it)
    out.info["layout"] = dict(
        rows=rows, cols=cols, x0=label_w + pad, y0=head + pad, dx=cell + pad, dy=cell + cap + pad
    )
    draw = ImageDraw.Draw(out)
    for c, text in enumerate(col_labels or []):
        draw.text((label_w + pad + c * (cell + pad) + 2, 3), text, fill=(20, 20, 20), font=_LABEL_FONT)
    for r in range(rows):
        y = head + pad + r * (cell + cap + pad)
        if r in highlight_rows:
            draw.rectangle(
                [1, y - pad // 2 - 1, w - 2, y + cell + cap + pad // 2], outline=HIGHLIGHT, width=3
            )
        if row_labels:
            color = HIGHLIGHT if r in highlight_rows else (20, 20, 20)
            n_lines = max(1, len(row_labels[r].splitlines()))
            draw.multiline_text(
                (8, y + cell // 2 - 9 * n_lines), row_labels[r], fill=color, font=_LABEL_FONT, spacing=3
            )
        for c in range(cols):
            if count is not None and r * cols + c >= count:
                break
            x = label_w + pad + c * (cell + pad)
            out.paste(_cell(imgs[r, c]).resize((cell, cell), Image.NEAREST), (x, y))
            ty = y + cell + 1
            if scores is not None:
                p = float(scores[r, c])
                draw.text((x + 1, ty), f"{score_name} {p:.2f}", fill=_score_color(p), font=_FONT)
                ty += line
            if scores2 is not None:
                p = float(scores2[r, c])
                draw.text((x + 1, ty), f"{score2_name} {p:.2f}", fill=_score_color(p), font=_FONT)
    return out


def cell_at(layout: dict, x, y, count: int | None = None) -> tuple[int, int] | None:
    """The (row, column) of the cell under pixel (x, y) of a grid drawn with that layout (its
    image's info["layout"]), or None off the cells (margins, labels, a bad layout)."""
    try:
        x, y = float(x), float(y)
        col, row = (x - layout["x0"]) // layout["dx"], (y - layout["y0"]) // layout["dy"]
        rows, cols = int(layout["rows"]), int(layout["cols"])
    except (TypeError, ValueError, KeyError, ZeroDivisionError):
        return None
    if not (0 <= row < rows and 0 <= col < cols):
        return None
    if count is not None and row * cols + col >= count:
        return None
    return int(row), int(col)


def strip(
    images01: np.ndarray,
    scores: np.ndarray,
    cell: int = 84,
    per_row: int = 12,
    scores2: np.ndarray | None = None,
    score2_name: str = "final D",
) -> Image.Image:
    """Frames left to right in as few rows of at most ``per_row`` as fit, the rows equally long
    (16 frames: 2 rows of 8, not 12 + 4 with a blank margin); each frame captioned."""
    imgs = np.asarray(images01, np.float32)
    n = len(imgs)
    rows = -(-n // max(1, per_row))
    cols = -(-n // rows)

    def fill(a, shape):
        out = np.zeros((rows * cols, *shape), np.float32)
        out[:n] = np.asarray(a, np.float32).reshape(n, *shape)
        return out.reshape(rows, cols, *shape)

    return grid(
        fill(imgs, imgs.shape[1:]),
        fill(scores, ()),
        cell=cell,
        count=n,
        scores2=None if scores2 is None else fill(scores2, ()),
        score2_name=score2_name,
    )


def split_samples(im: Image.Image, cols: int = 8, cell: int = 28, channels: int = 1) -> np.ndarray | None:
    """samples.png (a grid of ``cell`` px cells, ``cols`` per row, equal padding) -> (N, cell, cell)
    grey or (N, cell, cell, 3) colour, in [0,1].

    None when the picture is not such a grid (then it is shown as it is, without scores).
    """
    g = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.float32) / 255.0
    h, w = g.shape[:2]
    pad, rem = divmod(w - cols * cell, cols + 1)
    if rem or pad < 0:
        return None
    rows, rem = divmod(h - pad, cell + pad)
    if rem or rows < 1:
        return None
    out = [
        g[
            pad + r * (cell + pad) : pad + r * (cell + pad) + cell,
            pad + c * (cell + pad) : pad + c * (cell + pad) + cell,
        ]
        for r in range(rows)
        for c in range(cols)
    ]
    return np.stack(out).astype(np.float32)


def gif_bytes(
    images01: np.ndarray,
    scores: np.ndarray | None = None,
    size: int = 196,
    ms_per_frame: int = 90,
    bounce: bool = True,
) -> bytes:
    """An animated GIF of the frames (there and back), each with its score on a light band;
    ``size`` is rounded to a whole multiple of the images' side (``crisp``)."""
    frames = []
    images01 = np.asarray(images01)
    size = crisp(size, images01.shape[1])
    for i, im in enumerate(images01):
        f = digit(im, size).convert("RGB")
        if scores is not None:
            p = float(scores[i])
            text = f"P(real) {p:.2f}"
            d = ImageDraw.Draw(f)  # bottom-left: viewers put their own labels at the top
            d.rectangle([0, size - 20, _text_w(text) + 10, size], fill=(245, 245, 245))
            d.text((5, size - 17), text, fill=_score_color(p), font=_FONT)
        frames.append(f.convert("P", palette=Image.ADAPTIVE))
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- CLI
def render_link(link: str, runs_dirs: list, size: int = 336) -> tuple[bytes, str]:
    """A link, query string or PNG from the app -> (PNG bytes with the same state chunk, summary)."""
    from pathlib import Path

    from explorer import state
    from explorer.engine import Engine
    from explorer.registry import ExplorerError, RunRegistry

    if link.lower().endswith(".png") and "?" not in link:
        try:
            link = state.png_text(Path(link).read_bytes())
        except OSError as exc:
            raise state.StateError(f"cannot read {link}: {exc.strerror or exc}") from None
    s = state.decode(link)
    if s.z is None:
        raise state.StateError("the link holds no point (z=...); copy it with the app's Copy link")
    registry = RunRegistry(runs_dirs)
    run = registry.get(s.run)
    if s.epoch not in [e.epoch for e in run.good_epochs()]:
        raise ExplorerError(f"epoch {s.epoch} of run {s.run!r} is not on disk (or is broken)")
    s = state.decode(link, dim=run.latent_dim)
    y = (s.digit or 0) if run.num_classes else None  # a conditional run: the link's digit (old links: 0)
    img, p = Engine(registry).generate(s.run, s.epoch, s.z, y)
    as_digit = "" if y is None else f" as digit {y}"
    return state.png_bytes(digit(img, size), s), f"{s.run} epoch {s.epoch}{as_digit}: P(real) {p:.3f}"


def main(argv=None) -> int:
    import argparse
    import sys
    from pathlib import Path

    from explorer.registry import ExplorerError
    from training.runfolder import write_bytes_atomic

    ap = argparse.ArgumentParser(
        prog="python -m explorer.render", description="Render a point saved as a link (or PNG) to a PNG."
    )
    ap.add_argument(
        "--link", required=True, help="a link or query string from Copy link, or a PNG from the app"
    )
    ap.add_argument("--runs-dir", action="append", default=None, help="folder of runs (default: runs)")
    ap.add_argument("--out", required=True, help="PNG to write (with the same state in its metadata)")
    ap.add_argument("--size", type=int, default=336, help="image side in pixels (default 336)")
    a = ap.parse_args(argv)
    if not 28 <= a.size <= 4096:
        print("error: --size must be between 28 and 4096", file=sys.stderr)
        return 2
    try:
        data, summary = render_link(a.link, a.runs_dir or ["runs"], a.size)
        # replaces only the file the caller named as --out, and only once the new one is whole
        # (a hidden temporary beside it, renamed over it; removed if writing fails)
        write_bytes_atomic(Path(a.out), data)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {a.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
