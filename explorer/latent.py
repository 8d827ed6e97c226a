"""Latent maths: parsing and formatting vectors, paths between points, directions."""

from __future__ import annotations

import re

import numpy as np

from explorer.registry import ExplorerError

MAX_ABS = 10.0  # a standard normal latent never goes near this; larger values are mistakes
MIN_STEPS, MAX_STEPS = 2, 64


def parse_vector(text: str, dim: int) -> np.ndarray:
    """'0.1, -0.3 ...' (commas, spaces or brackets) -> float32 (dim,). Clear errors otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ExplorerError(f"the latent vector is empty: paste {dim} numbers separated by commas")
    if len(text) > 200_000:
        raise ExplorerError("the latent vector text is too long: paste just the numbers")
    parts = [p for p in re.split(r"[\s,;\[\]()]+", text.strip()) if p]
    bad = []
    vals = []
    for p in parts:
        try:
            vals.append(float(p))
        except ValueError:
            bad.append(p)
    if bad:
        shown = ", ".join(repr(b[:20]) for b in bad[:3])
        raise ExplorerError(f"the latent vector has words in it ({shown}); paste numbers only")
    if len(vals) != dim:
        raise ExplorerError(
            f"the latent vector has {len(vals)} numbers but this generator takes {dim}; "
            "paste a vector copied from this run"
        )
    v = np.asarray(vals, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ExplorerError("the latent vector holds NaN or infinity; use finite numbers")
    if np.abs(v).max() > MAX_ABS:
        raise ExplorerError(
            f"latent values must lie within ±{MAX_ABS:g} (found {np.abs(v).max():.3g}); "
            "the generator was trained on standard normal noise"
        )
    return v.astype(np.float32)


def format_vector(z) -> str:
    return ", ".join(f"{x:.4f}" for x in np.asarray(z, np.float64).ravel())


def check_vector(z, dim: int) -> np.ndarray:
    """Validate a numeric vector coming from the API or from sliders."""
    v = np.asarray(z, dtype=np.float64).ravel()
    if v.shape != (dim,):
        raise ExplorerError(f"expected {dim} latent values, got {v.size}")
    if not np.all(np.isfinite(v)) or np.abs(v).max() > MAX_ABS:
        raise ExplorerError(f"latent values must be finite and within ±{MAX_ABS:g}")
    return v.astype(np.float32)


def random_vector(dim: int, seed: int | None = None) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def lerp(a, b, t) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64).reshape(-1, 1)
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(a, b, t) -> np.ndarray:
    """Spherical path: angle interpolated, norm interpolated linearly (equal norms stay equal)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64).reshape(-1, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-12 or nb < 1e-12:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    omega = np.arccos(np.clip(np.dot(ua, ub), -1.0, 1.0))
    if omega < 1e-6:
        return lerp(a, b, t)
    so = np.sin(omega)
    if so < 1e-6:  # opposite points: any great circle will do; go through an orthogonal one
        ortho = np.zeros_like(ua)
        ortho[np.argmin(np.abs(ua))] = 1.0
        ortho -= ortho.dot(ua) * ua
        ortho /= np.linalg.norm(ortho)
        dirs = np.cos(np.pi * t) * ua + np.sin(np.pi * t) * ortho
    else:
        dirs = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / so
    norms = (1 - t) * na + t * nb
    return (dirs * norms).astype(np.float32)


def path(a, b, steps: int, kind: str = "spherical") -> np.ndarray:
    steps = clamp_steps(steps)
    t = np.linspace(0.0, 1.0, steps)
    if kind not in ("linear", "spherical"):
        raise ExplorerError(f"unknown path {kind!r}: choose linear or spherical")
    return lerp(a, b, t) if kind == "linear" else slerp(a, b, t)


def clamp_steps(steps) -> int:
    try:
        s = float(steps)
    except (TypeError, ValueError):
        raise ExplorerError(f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}") from None
    if not np.isfinite(s) or s < MIN_STEPS or s > MAX_STEPS or s != int(s):
        raise ExplorerError(f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS} (got {steps})")
    return int(s)


def pca_directions(features: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """GANSpace-style: PCA of features, regressed back to latent directions.

    Returns (directions (k, dim) orthonormal in z-space, explained variance ratios (k,)).
    """
    f = np.asarray(features, np.float64)
    if not np.all(np.isfinite(f)):
        raise ExplorerError(
            "this generator's features hold NaN or infinity (its weights are broken); "
            "no directions can be found: pick another epoch"
        )
    f = f - f.mean(0)
    # randomized SVD (a few power iterations): the top k components of a wide feature matrix
    # in well under a second, where a full SVD of 1000 x 6272 takes seconds
    rng = np.random.default_rng(0)
    y = f @ rng.standard_normal((f.shape[1], min(k + 10, min(f.shape))))
    for _ in range(3):
        y, _ = np.linalg.qr(y)
        y = f @ (f.T @ y)
    q, _ = np.linalg.qr(y)
    _, s, vt = np.linalg.svd(q.T @ f, full_matrices=False)
    k = min(k, vt.shape[0], z.shape[1])
    coords = f @ vt[:k].T  # (N, k) principal coordinates
    zc = np.asarray(z, np.float64) - np.asarray(z, np.float64).mean(0)
    w, *_ = np.linalg.lstsq(coords, zc, rcond=None)  # coords @ w ~ z: rows are z-directions
    q, r = np.linalg.qr(w.T)  # orthonormalise, keeping the order of importance
    q = q * np.sign(np.diag(r))[None, :]
    var = s**2 / max(float(np.sum(f**2)), 1e-12)  # share of the total feature variance
    return q.T[:k].astype(np.float32), var[:k].astype(np.float32)


def whole(value, what: str, lo: int, hi: int) -> int:
    """A whole number from lo to hi, or ExplorerError naming `what`."""
    try:
        v = float(value)
        ok = np.isfinite(v) and v == int(v) and lo <= v <= hi
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"{what} must be a whole number from {lo} to {hi} (got {str(value)[:40]})")
    return int(v)


def compare_points(n_points, seed, dim: int) -> np.ndarray:
    """The latent points Compare draws through every epoch (the same for a seed and count)."""
    n_points, seed = whole(n_points, "points", 1, 32), whole(seed, "seed", 0, 2**32 - 1)
    return np.random.default_rng(seed).standard_normal((n_points, dim)).astype(np.float32)
