"""The networks: one named preset per architecture.

Each preset records the facts the rest of the project needs (latent size, pixel range,
whether the discriminator outputs logits) so they are read from one place, never repeated.
"""

from models.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset

__all__ = ["PRESETS", "DEFAULT_PRESET", "Preset", "get_preset"]
