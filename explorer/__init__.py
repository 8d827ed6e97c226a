"""Latent Explorer: plain-Python logic (registry, latent, engine, render) and a thin Gradio layer (ui)."""
