"""explorer.state: a view as a link and as a PNG text chunk, and every way such a text is wrong."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from explorer import state
from explorer.state import StateError, ViewState

finite = st.floats(-10, 10, allow_nan=False, width=32)
vectors = st.lists(finite, min_size=1, max_size=128).map(lambda v: np.asarray(v, np.float32))
names = st.text(
    st.characters(blacklist_characters="/\\\0", blacklist_categories=("Cs",)), min_size=1, max_size=40
)
states = st.builds(
    ViewState,
    run=names,
    epoch=st.integers(0, 10**6),
    view=st.sampled_from(state.VIEWS),
    z=st.none() | vectors,
    dims=st.lists(st.integers(0, 4095), max_size=8).map(tuple),
    a=st.none() | vectors,
    b=st.none() | vectors,
)


@settings(max_examples=200, deadline=None)
@given(states)
def test_link_round_trip_is_exact(s):
    q = state.encode(s)
    assert state.decode(q) == s
    assert state.decode("http://host:7860/?" + q) == s  # a whole URL works too
    assert state.parse(q) == (s, [])


@settings(max_examples=30, deadline=None)
@given(states)
def test_png_round_trip(s):
    data = state.png_bytes(Image.new("L", (4, 4)), s)
    assert state.decode(state.png_text(data)) == s


def test_link_is_compact():
    z = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    q = state.encode(ViewState("tiny", 3, "sliders", z))
    assert len(q) < 400 and "%" not in q.split("z=")[1]  # url-safe: nothing to escape


GOOD = state.encode(ViewState("tiny", 3, "sliders", np.zeros(64, np.float32)))


@pytest.mark.parametrize(
    "query, message",
    [
        (GOOD.replace("v=1", "v=7"), "unknown link version '7'"),
        (GOOD.replace("v=1&", ""), "has no version"),
        (GOOD.replace("z=", "z=%21%21"), "not url-safe base64"),
        (GOOD.replace("z=", "z=AA"), "not whole float32 numbers"),
        (GOOD.replace("z=", "z=AAA"), "not valid base64"),
        ("v=1&run=tiny&epoch=3&z=" + state.encode_vector([np.nan, 0]), "NaN or infinity"),
        ("v=1&run=tiny&epoch=3&z=" + state.encode_vector([np.inf]), "NaN or infinity"),
        ("v=1&run=tiny&epoch=3&z=" + state.encode_vector([11.0]), "beyond ±10"),
        ("v=1&epoch=3", "no run"),
        ("v=1&run=tiny", "no epoch"),
        ("v=1&run=tiny&epoch=three", "epoch in the link must be a whole number"),
        ("v=1&run=../etc&epoch=1", "run name"),
        ("v=1&run=tiny&epoch=1&view=nowhere", "unknown view 'nowhere'"),
        ("v=1&run=tiny&epoch=1&dims=1.x", "slider dimension"),
        ("v=1&run=tiny&epoch=1&z=", "the point in the link is empty"),
        ("x" * 200_000, "too long"),
    ],
)
def test_malformed_links_say_what_is_wrong(query, message):
    with pytest.raises(StateError, match=message):
        state.decode(query)


def test_wrong_length_point_for_the_generator():
    with pytest.raises(StateError, match="has 64 numbers but this generator takes 100"):
        state.decode(GOOD, dim=100)
    assert state.decode(GOOD, dim=64).z.shape == (64,)


def test_parse_keeps_the_good_fields_of_a_partly_bad_link():
    s, problems = state.parse(GOOD.replace("z=", "z=AA"))
    assert (s.run, s.epoch, s.z) == ("tiny", 3, None)
    assert len(problems) == 1 and "float32" in problems[0]


def test_has_state():
    assert state.has_state(GOOD) and state.has_state({"run": "x"})
    assert not state.has_state("") and not state.has_state({"__theme": "dark"})


def test_png_without_state_and_non_png(tmp_path):
    import io

    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="PNG")
    with pytest.raises(StateError, match="carries no explorer state"):
        state.png_text(buf.getvalue())
    with pytest.raises(StateError, match="not a PNG"):
        state.png_text(b"GIF89a....")
    with pytest.raises(StateError, match="damaged"):
        state.png_text(state.png_bytes(Image.new("L", (4, 4)), GOOD)[:40])


def test_tag_survives_pillow_save_with_text_info():
    from gradio.processing_utils import get_pil_metadata  # what Gradio writes into the PNGs it serves

    img = state.tag(Image.new("RGB", (4, 4)), GOOD)
    assert get_pil_metadata(img).chunks  # the state is among the text chunks Gradio copies
    assert base64 and state.decode(img.info[state.PNG_KEY]).run == "tiny"


def test_a_compare_grid_names_its_run_only():
    s = ViewState("tiny", None, "compare")
    assert state.decode(state.encode(s)) == s  # every epoch is in the grid: no epoch needed
    with pytest.raises(StateError, match="no epoch"):
        state.decode("v=1&run=tiny&view=sliders")
