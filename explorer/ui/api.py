"""API-only endpoints (no component): /list_runs and /generate."""

from __future__ import annotations

import base64
import io
import json

import gradio as gr

from explorer import figures, latent, render
from explorer.ui.context import Ctx, err


def epoch_fcd(summary) -> float | None:
    q = summary.get("quality") if isinstance(summary, dict) else None
    return figures.num(q.get("fcd")) if isinstance(q, dict) else None


def build(ctx: Ctx) -> None:
    @err
    def list_runs() -> str:
        """All runs on disk with their status and epochs (JSON)."""
        out = [
            {
                "name": r.name,
                "status": r.status,
                "broken": r.broken,
                "latent_dim": r.info.get("latent_dim"),
                "num_classes": r.facts.num_classes if r.facts else None,  # 0: not conditional
                "epochs": [
                    {"epoch": e.epoch, "broken": e.broken, "fcd": epoch_fcd(e.summary)} for e in r.epochs
                ],
            }
            for r in ctx.registry.list_runs()
        ]
        return json.dumps(out)

    def draw(run, epoch, vector, label) -> tuple[str, float]:
        run, epoch = ctx.need(run, epoch)
        dim = ctx.engine.snapshot(run, epoch).latent_dim
        img, p = ctx.engine.generate(run, epoch, latent.parse_vector(vector, dim), label)
        buf = io.BytesIO()
        render.digit(img, img.shape[1]).save(buf, format="PNG")  # the image at its own size
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), p

    @err
    def generate(run: str, epoch: int, vector: str) -> tuple[str, float]:
        """Render one latent vector (text, comma-separated) -> (PNG data URI, P(real) by that epoch's D).
        A conditional run draws it as digit 0 (/generate_digit takes the digit)."""
        return draw(run, epoch, vector, None)

    @err
    def generate_digit(run: str, epoch: int, vector: str, label: str) -> tuple[str, float]:
        """/generate for a conditional run: label is the digit to draw (0-9)."""
        return draw(run, epoch, vector, label)

    gr.api(list_runs, api_name="list_runs")
    gr.api(generate, api_name="generate")
    gr.api(generate_digit, api_name="generate_digit")
