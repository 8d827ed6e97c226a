"""A view of the explorer as a compact text: run, epoch, view tab, the latent point (and the
sliders' dimensions, interpolation endpoints A/B, the digit a conditional run draws it as).
The same text is a URL query string and a PNG text chunk (key ``latent-explorer``), so a link
or a downloaded picture restores the view.

Pure (stdlib, numpy, Pillow): no Gradio, no TensorFlow. Points are url-safe base64 of float32
little-endian bytes, so a point survives a link exactly (the image drawn from it is identical).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from explorer.registry import ExplorerError

VERSION = 1
PNG_KEY = "latent-explorer"
VIEWS = ("snapshot", "sliders", "interp", "compare", "yourdigit", "train")
MAX_DIM = 4096  # far above any latent size here; longer points are damaged or hostile text
MAX_ABS = 10.0  # as explorer.latent.MAX_ABS: a standard normal latent never goes near it
MAX_TEXT = 100_000
KEYS = ("v", "run", "epoch", "view", "z", "dims", "a", "b", "digit")
MAX_DIGIT = 999  # a class label; a conditional run checks it against its own number of classes


class StateError(ExplorerError):
    """A link or a PNG's state that cannot be used; the message says what and what to do."""


@dataclass(frozen=True)
class ViewState:
    run: str | None = None
    epoch: int | None = None
    view: str = "sliders"
    z: np.ndarray | None = None  # float32 (latent_dim,)
    dims: tuple[int, ...] = ()  # the dimensions the sliders show
    a: np.ndarray | None = None  # interpolation endpoints
    b: np.ndarray | None = None
    digit: int | None = None  # a conditional run's digit (None: links made before it, or unconditional)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ViewState):
            return NotImplemented

        def same(x, y):
            return (x is None and y is None) or (
                x is not None and y is not None and x.shape == y.shape and x.tobytes() == y.tobytes()
            )

        return (self.run, self.epoch, self.view, self.dims, self.digit) == (
            other.run,
            other.epoch,
            other.view,
            other.dims,
            other.digit,
        ) and all(same(getattr(self, k), getattr(other, k)) for k in ("z", "a", "b"))

    __hash__ = None


def encode_vector(z) -> str:
    v = np.asarray(z, np.float32).ravel()
    return base64.urlsafe_b64encode(v.astype("<f4").tobytes()).decode().rstrip("=")


def decode_vector(text: str, name: str = "z", dim: int | None = None) -> np.ndarray:
    """url-safe base64 float32 -> (n,) float32, with a clear StateError for every way it is wrong."""
    what = "the point" if name == "z" else f"endpoint {name.upper()}"
    if not isinstance(text, str) or not text:
        raise StateError(f"{what} in the link is empty")
    if len(text) > MAX_TEXT or not re.fullmatch(r"[A-Za-z0-9_-]+=*", text):
        raise StateError(f"{what} in the link is not url-safe base64 (was the link cut or edited?)")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise StateError(f"{what} in the link is not valid base64 (was the link cut or edited?)") from None
    if len(raw) % 4 or not raw:
        raise StateError(f"{what} in the link has {len(raw)} bytes, not whole float32 numbers (cut short?)")
    v = np.frombuffer(raw, "<f4").astype(np.float32)
    if v.size > MAX_DIM:
        raise StateError(f"{what} in the link has {v.size} numbers; at most {MAX_DIM}")
    if dim is not None and v.size != dim:
        raise StateError(f"{what} in the link has {v.size} numbers but this generator takes {dim}")
    if not np.all(np.isfinite(v)):
        raise StateError(f"{what} in the link holds NaN or infinity")
    if np.abs(v).max() > MAX_ABS:
        raise StateError(f"{what} in the link has values beyond ±{MAX_ABS:g}")
    return v


def encode(s: ViewState) -> str:
    """A ViewState -> query string (no leading '?')."""
    q = {"v": str(VERSION)}
    if s.run is not None:
        q["run"] = s.run
    if s.epoch is not None:
        q["epoch"] = str(int(s.epoch))
    q["view"] = s.view
    for k in ("z", "a", "b"):
        if getattr(s, k) is not None:
            q[k] = encode_vector(getattr(s, k))
    if s.dims:
        q["dims"] = ".".join(str(int(d)) for d in s.dims)
    if s.digit is not None:
        q["digit"] = str(int(s.digit))
    return urlencode(q)


def as_params(query) -> dict[str, str]:
    """A URL, a query string (with or without '?') or a mapping -> {key: first value}."""
    if isinstance(query, str):
        if len(query) > MAX_TEXT:
            raise StateError("the link is too long to be one from this app")
        if "://" in query or query.startswith("/"):
            query = urlsplit(query).query
        query = query.lstrip("?")
        return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return {str(k): str(v) for k, v in dict(query).items()}


def has_state(query) -> bool:
    try:
        return any(k in as_params(query) for k in KEYS)
    except StateError:
        return True


def _whole(text: str, what: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"\d{1,9}", text or ""):
        raise StateError(f"the {what} in the link must be a whole number (got {text[:20]!r})")
    n = int(text)
    if not lo <= n <= hi:
        raise StateError(f"the {what} in the link must be between {lo} and {hi} (got {n})")
    return n


def _field(p: dict, key: str):
    """One field of a parsed query -> its value (None when absent); StateError when bad."""
    text = p.get(key)
    if text is None:
        return None
    if key == "run":
        if not text or len(text) > 200 or any(c in text for c in "/\\\0"):
            raise StateError("the run name in the link is empty or not a run folder's name")
        return text
    if key == "epoch":
        return _whole(text, "epoch", 0, 10**8)
    if key == "view":
        if text not in VIEWS:
            raise StateError(f"unknown view {text[:20]!r} in the link; one of {', '.join(VIEWS)}")
        return text
    if key == "digit":
        return _whole(text, "digit", 0, MAX_DIGIT)
    if key == "dims":
        parts = [x for x in re.split(r"[.,\s]+", text) if x]
        return tuple(_whole(x, "slider dimension", 0, MAX_DIM - 1) for x in parts[:64])
    return decode_vector(text, key)


def parse(query) -> tuple[ViewState, list[str]]:
    """Lenient: every usable field of a link/PNG text, and a message for each field that is not.

    A bad field is left out (None), so the caller can open the nearest valid state."""
    try:
        p = as_params(query)
    except StateError as exc:
        return ViewState(), [str(exc)]
    v = p.get("v")
    if v is None:
        return ViewState(), ["the link has no version (v=...); it was not made by this app"]
    if v != str(VERSION):
        return ViewState(), [f"unknown link version {v[:10]!r}: this app reads version {VERSION}"]
    problems, vals = [], {}
    for key in KEYS[1:]:
        try:
            val = _field(p, key)
        except StateError as exc:
            problems.append(str(exc))
            continue
        if val is not None:
            vals[key] = val
    for key in ("run", "epoch") if vals.get("view") != "compare" else ("run",):  # compare: all epochs
        if key not in vals and not any(key in m for m in problems):
            problems.append(f"the link has no {key}")
    return ViewState(**vals), problems


def decode(query, dim: int | None = None) -> ViewState:
    """Strict: a ViewState, or StateError naming the first problem."""
    s, problems = parse(query)
    if problems:
        raise StateError(problems[0])
    if dim is not None:
        for k in ("z", "a", "b"):
            v = getattr(s, k)
            if v is not None and v.size != dim:
                raise StateError(
                    f"{'the point' if k == 'z' else 'endpoint ' + k.upper()} in the link has {v.size} "
                    f"numbers but this generator takes {dim}"
                )
    return s


# ---------------------------------------------------------------------------------- PNG
def png_bytes(img, s: ViewState | str) -> bytes:
    """A PIL image -> PNG bytes carrying the state text under PNG_KEY."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, s if isinstance(s, str) else encode(s))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def tag(img, s: ViewState | str):
    """Attach the state to a PIL image's info (Gradio and Pillow write text info into PNGs)."""
    img.info[PNG_KEY] = s if isinstance(s, str) else encode(s)
    return img


def png_text(data: bytes) -> str:
    """PNG bytes -> the state text in it; StateError for a non-PNG or a PNG without state."""
    from PIL import Image, UnidentifiedImageError

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise StateError("that file is not a PNG; drop a PNG downloaded from this app")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            text = im.text.get(PNG_KEY) if hasattr(im, "text") else None
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        raise StateError("that PNG is damaged and cannot be read") from None
    if not text:
        raise StateError("that PNG carries no explorer state; drop a PNG downloaded from this app")
    return text
