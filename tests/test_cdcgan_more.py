"""A conditional run (cdcgan) in the views that test_cdcgan.py does not cover: Compare per digit
(one digit at every epoch, or a column per digit) with the share drawn as the digit asked for in
the per-epoch table; the sliders keeping the digit picked through Back/Forward, links, PNGs,
clicked Compare cells, "Toward digit", "More real" and a new epoch; and D's pixel gradients
(saliency, More real) judging the point as the digit picked.

One tiny conditional run (one epoch of 384 labelled digits, trained once per session through the CLI
and shared with test_cdcgan.py: conftest.COND_ARGS), and one
app built over it in this process (its handlers called as the page calls them, its public
endpoints through gradio_client).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests._demo import DEMO_FINAL
from tests.test_cdcgan import ROOT, png_pixels

SLIDERS = [None] * 14  # the sliders as a fresh page sends them: the base point itself


@pytest.fixture(scope="module")
def runs(cond_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("cdcgan-more")
    shutil.copytree(cond_run / "cond", runs / "cond")  # a copy: the app's tests may write into it
    return runs


@pytest.fixture(scope="module")
def app(runs, tmp_path_factory):
    """The explorer over the conditional run and the bundled (unconditional) demo, served."""
    from tests.test_cdcgan import served_app

    with served_app([runs, ROOT / "runs"], tmp_path_factory.mktemp("train")) as app:
        yield app


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False, ssl_verify=False)


def handler(app, name: str, inputs: int | None = None):
    """The function the page calls for an event (by its api_name, else its function's name)."""
    found = [
        f
        for f in app.fns.values()
        if (f.api_name == name or getattr(f.fn, "__name__", None) == name)
        and (inputs is None or len(f.inputs) == inputs)
    ]
    assert found, f"no event handler {name!r}"
    return found[0].fn


def z_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(64).astype(np.float32)


def caption_digit(html_: str) -> str:
    return html_.split("digit <b>", 1)[1].split("</b>", 1)[0]


def image_of(html_: str) -> np.ndarray:
    """The large image of a point view (its last <img>: the overlay, when drawn, comes first)."""
    return png_pixels(html_.split('id="latent-image"', 1)[1].split('src="', 1)[1].split('"', 1)[0])


def drawn(app, z, digit) -> np.ndarray:
    """The point drawn as the digit, as the sliders draw it (the same PNG pipeline)."""
    from explorer import render
    from explorer.ui.sliders import png_html

    img, _ = app.engine.generate("cond", 1, z, digit)
    return image_of(png_html(render.digit(img, 336)))


# ----------------------------------------------------------------------------- Compare per digit
def test_compare_each_digit_draws_the_first_point_as_every_digit(app):
    epochs, imgs, p = app.engine.compare("cond", 3, 7, label="each digit")
    z0 = app.engine.compare_points("cond", 3, 7)[0]
    assert epochs == [1] and imgs.shape == (1, 10, 28, 28) and p.shape == (1, 10)
    for k in range(10):
        np.testing.assert_allclose(imgs[0, k], app.engine.generate("cond", 1, z0, k)[0], atol=1e-5)
    assert min(np.abs(imgs[0, i] - imgs[0, j]).mean() for i in range(10) for j in range(i)) > 1e-3
    # D judges each column as its own digit
    np.testing.assert_allclose(p[0], app.engine.scores("cond", 1, imgs[0], np.arange(10)), atol=1e-5)
    _, _, final = app.engine.compare("cond", 3, 7, final_d=True, label="each digit")
    np.testing.assert_allclose(final, p, atol=1e-5)


def test_compare_each_digit_on_an_unconditional_run_is_a_clear_error(app):
    from explorer.registry import ExplorerError

    with pytest.raises(ExplorerError, match="'demo' is not conditional"):
        app.engine.compare("demo", 3, 0, label="each digit")


def _table(out) -> dict:
    """The per-epoch table as gradio_client returns it -> {column: [values]}."""
    t = out[6]
    return {h: [row[i] for row in t["data"]] for i, h in enumerate(t["headers"])}


def test_compare_digit_endpoint_draws_the_digit_asked_and_the_table_has_the_share(client, runs):
    three = client.predict("cond", 4, 0, False, "3", api_name="/compare_digit")
    five = client.predict("cond", 4, 0, False, "5", api_name="/compare_digit")
    a, b = (np.asarray(Image.open(o[0]).convert("L"), np.float32) for o in (three, five))
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.5
    assert "Every point is drawn as digit 3" in three[1]
    summary = json.loads((runs / "cond" / "epochs" / "epoch-0001" / "summary.json").read_text())
    table = _table(three)
    heads = list(table)
    share = "Drawn as the digit asked (share)"
    assert heads.index(share) == heads.index("FCD (lower: better)") + 1  # next to FCD
    assert table[share] == [pytest.approx(summary["quality"]["conditional_accuracy"], abs=1e-4)]
    # /compare keeps its four inputs: digit 0, as /compare_digit "0" draws it
    plain = client.predict("cond", 4, 0, False, api_name="/compare")
    zero = client.predict("cond", 4, 0, False, "0", api_name="/compare_digit")
    assert np.array_equal(np.asarray(Image.open(plain[0])), np.asarray(Image.open(zero[0])))


def test_compare_digit_each_draws_a_column_per_digit_headed_by_its_digit(client):
    out = client.predict("cond", 4, 0, False, "each digit", api_name="/compare_digit")
    grid = Image.open(out[0])
    four = Image.open(client.predict("cond", 4, 0, False, "3", api_name="/compare_digit")[0])
    assert grid.width > four.width * 2 and grid.height > four.height  # 10 columns, a header row
    assert "one latent point drawn as each digit" in out[1]
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict("cond", 4, 0, False, "12", api_name="/compare_digit")


def test_the_public_compare_endpoints_and_their_inputs(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert len(api["/compare"]["parameters"]) == 4 and len(api["/compare_digit"]["parameters"]) == 5


def test_an_unconditional_run_has_no_share_column(app):
    from explorer import figures, tables

    rows = figures.epoch_rows(app.registry.get("demo"), app.registry.metrics("demo"))
    assert "Drawn as the digit asked (share)" not in tables.epoch_table(rows, None).columns
    rows = figures.epoch_rows(app.registry.get("cond"), app.registry.metrics("cond"))
    assert 0 <= rows[0]["drawn_as_asked"] <= 1


def test_a_clicked_compare_cell_opens_at_its_digit_in_the_sliders(app):
    from explorer import render
    from explorer.ui import interpolation, links

    compare = handler(app, "compare_digit")
    out = compare("cond", 3, 2, False, "each digit")
    grid, cm = out[0], out[-1]
    assert cm["digits"] == list(range(10))
    layout = cm["layout"]
    x, y = layout["x0"] + 7 * layout["dx"] + 5, layout["y0"] + 5  # the cell of digit 7
    assert render.cell_at(layout, x, y) == (0, 7) and grid.width > x
    s = interpolation.cell_state(cm, x, y)
    assert s.digit == 7 and s.epoch == 1
    restored = links.restore(app.ctx, _points(app), s, [])
    point_html, picker = _point_html(restored), restored[-1]
    assert caption_digit(point_html) == "7" and picker["value"] == "7"
    np.testing.assert_allclose(image_of(point_html), drawn(app, s.z, 7))
    # one digit asked: every column carries it
    assert handler(app, "compare_digit")("cond", 3, 2, False, "4")[-1]["digits"] == [4, 4, 4]


# ----------------------------------------------------------------------------- links and PNGs
def _points(app):
    """The sliders' point logic (explorer.ui.sliders.Points: the context, nothing else)."""
    from explorer.ui.sliders import Points

    return Points(app.ctx)


def _point_html(out) -> str:
    return next(o for o in out if isinstance(o, str) and 'id="latent-image"' in o)


def test_a_link_keeps_the_digit_and_an_old_link_opens_as_digit_0(app):
    from explorer import state
    from explorer.ui import links

    z = z_of(1)
    s = state.ViewState("cond", 1, "sliders", z, digit=6)
    again = state.decode(state.encode(s))
    assert again == s and again.digit == 6 and "digit=6" in state.encode(s)
    out = links.restore(app.ctx, _points(app), again, [])
    assert caption_digit(_point_html(out)) == "6" and out[-1]["value"] == "6"
    np.testing.assert_allclose(image_of(_point_html(out)), drawn(app, z, 6))
    old = state.decode(state.encode(state.ViewState("cond", 1, "sliders", z)))  # made before digits
    assert old.digit is None and "digit" not in state.encode(old)
    out = links.restore(app.ctx, _points(app), old, [])
    assert caption_digit(_point_html(out)) == "0" and out[-1]["value"] == "0"
    # a digit the run does not have: drawn as 0, and the person is told
    *_, digit = links.resolve(app.ctx, state.ViewState("cond", 1, "sliders", z, digit=12), [])
    notes = links.resolve(app.ctx, state.ViewState("cond", 1, "sliders", z, digit=12), [])[5]
    assert digit == 0 and any("digit 12" in n for n in notes)
    # an unconditional run ignores a digit and leaves the (hidden) picker alone
    demo = links.restore(
        app.ctx, _points(app), state.ViewState("demo", DEMO_FINAL, "sliders", z, digit=3), []
    )
    assert "digit <b>" not in _point_html(demo) and demo[-1] == {"__type__": "update"}


@pytest.mark.parametrize("bad", ["x", "-1", "1.5", "9999999999"])
def test_a_link_with_a_damaged_digit_names_it_and_keeps_the_rest(bad):
    from explorer import state

    s, problems = state.parse(f"v=1&run=cond&epoch=1&view=sliders&digit={bad}")
    assert s.run == "cond" and s.digit is None and len(problems) == 1 and "digit" in problems[0]


def test_copy_link_and_the_png_carry_the_digit_picked(app):
    from explorer import state

    points = _points(app)
    base = z_of(2)
    dims = app.engine.top_dims("cond", 1, 8)
    link = handler(app, "copy_link")("cond", 1, base.tolist(), dims, "http://x/", *SLIDERS, "4")
    s = state.decode(link)
    assert s.digit == 4 and s.run == "cond" and np.array_equal(s.z, base)
    html_ = handler(app, "png")("cond", 1, base.tolist(), dims, *SLIDERS, "4")
    data = base64.b64decode(html_.split("base64,", 1)[1].split('"', 1)[0])
    assert state.decode(state.png_text(data)).digit == 4
    png = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)
    np.testing.assert_allclose(png, drawn(app, base, 4))
    # the PNG dropped back: the same point, the same digit
    from explorer.ui import links

    out = links.restore(app.ctx, points, state.decode(state.png_text(data)), [])
    assert caption_digit(_point_html(out)) == "4" and out[-1]["value"] == "4"
    # an unconditional run's link has no digit
    demo = handler(app, "copy_link")("demo", DEMO_FINAL, base.tolist(), [], "http://x/", *SLIDERS, "4")
    assert state.decode(demo).digit is None


# ----------------------------------------------------------------------------- the sliders' buttons
def test_back_and_forward_keep_the_digit_picked(app):
    from explorer.ui import history

    z1, z2 = z_of(3), z_of(4)
    h = history.push(history.push(history.empty(), z1), z2)  # at z2
    moves = {}  # the Back (-1) and Forward (+1) buttons' handlers, by their step
    for f in app.fns.values():
        if getattr(f.fn, "__name__", "") == "move":
            cells = [c.cell_contents for c in f.fn.__wrapped__.__closure__]
            moves[next(c for c in cells if isinstance(c, int))] = f.fn
    back = moves[-1]("cond", 1, [], h, "8")
    assert back[3] == z1.tolist() and caption_digit(back[0]) == "8" and back[-1]["at"] == 0
    np.testing.assert_allclose(image_of(back[0]), drawn(app, z1, 8))
    forward = moves[+1]("cond", 1, [], back[-1], "2")  # the picker moved meanwhile: its digit
    assert forward[3] == z2.tolist() and caption_digit(forward[0]) == "2"
    np.testing.assert_allclose(image_of(forward[0]), drawn(app, z2, 2))


def test_toward_digit_and_more_real_keep_the_digit_picked(app):
    from explorer import directions

    base, dims = z_of(5), app.engine.top_dims("cond", 1, 8)
    out = handler(app, "sliders_toward_digit")("cond", 1, base.tolist(), dims, 7, 2.0, *SLIDERS, "3")
    assert caption_digit(out[0]) == "3" and out[3] != base.tolist()
    np.testing.assert_allclose(image_of(out[0]), drawn(app, np.array(out[3], np.float32), 3))
    assert "Toward **7**" in out[-1]
    out = handler(app, "sliders_more_real")("cond", 1, base.tolist(), dims, *SLIDERS, "3")
    moved = np.array(out[3], np.float32)
    assert caption_digit(out[0]) == "3" and not np.array_equal(moved, base)
    np.testing.assert_allclose(image_of(out[0]), drawn(app, moved, 3))
    # More real climbs D's logit of the point drawn as 3, judged as 3 (not as digit 0)
    snap = app.engine.snapshot("cond", 1)
    r3 = directions.more_real(app.engine, snap, base, label=3)
    r0 = directions.more_real(app.engine, snap, base, label=0)
    assert np.array_equal(r3["z"], moved) and not np.array_equal(r3["z"], r0["z"])
    assert r3["logit_after"] > r3["logit_before"]
    p3 = float(app.engine.generate("cond", 1, base, 3)[1])
    assert 1 / (1 + np.exp(-r3["logit_before"])) == pytest.approx(p3, abs=1e-4)


def test_a_new_epoch_or_run_keeps_the_digit_and_the_picker_keeps_its_value(app):
    point = handler(app, "digit_open_point")
    out = point("cond", 1, z_of(6).tolist(), [], "9")
    assert caption_digit(out[0]) == "9"
    np.testing.assert_allclose(image_of(out[0]), drawn(app, z_of(6), 9))
    shown = handler(app, "digit_picker_shown")
    assert shown("cond") == {"__type__": "update", "visible": True}  # no value: the digit stays
    assert shown("demo")["visible"] is False


def test_the_nearest_real_digits_strip_follows_the_digit_picked(app):
    from explorer import latent
    from explorer.ui import nearest

    z = z_of(11)
    strip = handler(app, "nn_digit")  # the strip's answer to a pick of the digit picker
    shown = {d: strip("cond", 1, latent.format_vector(z), True, d) for d in ("1", "7")}

    def found(html_):  # the training digits shown (distances may differ in the last float digit)
        return re.findall(r"training digit #(\d+)", html_)

    for d, html_ in shown.items():
        assert "Nearest real training digits" in html_ and found(html_)
        want = nearest.strip_html(app.ctx, "cond", app.engine.generate("cond", 1, z, d)[0])
        assert found(html_) == found(want)
    assert found(shown["1"]) != found(shown["7"])
    assert found(handler(app, "nn_point")("cond", 1, latent.format_vector(z), True, "7")) == found(shown["7"])


# ----------------------------------------------------------------------------- D's gradients
def test_saliency_of_a_conditional_run_is_d_s_gradient_for_the_digit_picked(app):
    import tensorflow as tf

    from explorer import directions

    snap = app.engine.snapshot("cond", 1)
    img = app.engine.generate("cond", 1, z_of(7), 2)[0]
    grads = {k: directions.saliency(app.engine, snap, img, k) for k in (2, 5)}
    x = tf.constant(img[None, ..., None] * 2 - 1)  # the run's pixel range is [-1, 1]
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit = tf.reduce_sum(snap.discriminator([x, tf.constant([2])], training=False))
    want = tape.gradient(logit, x).numpy()[0, ..., 0] * 2  # per 0-1 pixel
    np.testing.assert_allclose(grads[2][0], want, rtol=1e-3, atol=1e-6)
    assert grads[2][1] == pytest.approx(float(logit), abs=1e-4)
    assert np.abs(grads[2][0] - grads[5][0]).max() > 0  # another digit: another judgement
    # no digit (a person's drawing): judged as the digit D finds most plausible
    best = int(np.argmax(app.engine.scores("cond", 1, np.repeat(img[None], 10, 0), np.arange(10))))
    np.testing.assert_allclose(
        directions.saliency(app.engine, snap, img)[0], directions.saliency(app.engine, snap, img, best)[0]
    )


def test_the_saliency_overlay_is_drawn_for_the_digit_picked(app):
    from explorer import directions

    base, dims = z_of(8), app.engine.top_dims("cond", 1, 8)
    assert handler(app, "sliders_saliency")(True) is True  # the session's state, for the API
    # the page's redraw when the toggle turns on (one listener with the sliders and the digit)
    html_ = handler(app, "slide_page")("cond", 1, base.tolist(), dims, True, *SLIDERS, "6")[0]
    assert 'id="latent-saliency"' in html_ and caption_digit(html_) == "6"
    np.testing.assert_allclose(image_of(html_), drawn(app, base, 6))
    img, p, _ = directions.look(app.engine, app.engine.snapshot("cond", 1), base, 6)
    np.testing.assert_allclose(img, app.engine.generate("cond", 1, base, 6)[0], atol=1e-5)
    assert p == pytest.approx(app.engine.generate("cond", 1, base, 6)[1], abs=1e-5)
    # the drag path with the toggle on: the same overlay, the same digit
    slid = handler(app, "slide")("cond", 1, base.tolist(), dims, True, *SLIDERS, "6")
    assert 'id="latent-saliency"' in slid[0] and caption_digit(slid[0]) == "6"


def test_the_public_more_real_and_saliency_endpoints_serve_a_conditional_run(client):
    vec = ", ".join(["0.2"] * 64)
    r = json.loads(client.predict("cond", 1, vec, 3, 0.3, api_name="/more_real"))
    assert r["logit_after"] > r["logit_before"] and len(r["z"]) == 64
    s = json.loads(client.predict("cond", 1, vec, "", api_name="/saliency"))
    assert np.asarray(s["saliency"]).shape == (28, 28) and np.abs(np.asarray(s["saliency"])).max() > 0


# ----------------------------------------------------------------------------- in the browser
from tests import test_browser  # noqa: E402

browser = test_browser.browser  # the module-scoped headless Chromium fixture


def test_a_link_back_forward_and_copy_link_keep_the_digit_in_the_browser(app, browser):
    from playwright.sync_api import expect

    from explorer import latent, state

    z = z_of(9)
    url = app.url + "?" + state.encode(state.ViewState("cond", 1, "sliders", z, digit=6))
    pg = test_browser.new_page(browser, url)
    caption = pg.locator("#latent-caption")
    try:
        pg.locator("#latent-caption", has_text="digit 6").wait_for()
        # the picker and the box are other outputs of the link's answer: waited for, not read once
        expect(pg.locator("#digit-picker").get_by_label("6", exact=True)).to_be_checked(timeout=60_000)
        expect(pg.locator("#vector textarea")).to_have_value(latent.format_vector(z), timeout=60_000)
        pg.locator("#random-btn").click()
        pg.wait_for_function(
            "(v) => document.querySelector('#vector textarea').value !== v", arg=latent.format_vector(z)
        )
        assert "digit 6" in caption.inner_text()
        # the history records the new point in its own round trip after the point's answer
        expect(pg.locator("#back-btn")).to_have_text("◀ Back (1)", timeout=60_000)
        pg.locator("#back-btn").click()  # back to the link's point, still drawn as 6
        pg.wait_for_function(
            "(v) => document.querySelector('#vector textarea').value === v", arg=latent.format_vector(z)
        )
        assert "digit 6" in caption.inner_text()
        pg.locator("#digit-picker").get_by_label("3", exact=True).check()
        pg.locator("#latent-caption", has_text="digit 3").wait_for()
        pg.locator("#fwd-btn").click()  # forward to the random point, drawn as the digit now picked
        pg.wait_for_function(
            "(v) => document.querySelector('#vector textarea').value !== v", arg=latent.format_vector(z)
        )
        assert "digit 3" in caption.inner_text()
        pg.locator("#copy-link-btn").click()
        link = pg.locator("#link textarea")
        pg.wait_for_function("() => document.querySelector('#link textarea').value.includes('digit=3')")
        assert state.decode(link.input_value()).digit == 3
    finally:
        pg.close()


def test_compare_s_digit_picker_in_the_browser(app, browser):
    """Shown for a conditional run; "each digit" redraws the grid with a column per digit (10, not
    the 8 points)."""
    from playwright.sync_api import expect

    pg = test_browser.new_page(browser, app.url + "?v=1&run=cond&view=compare")
    try:
        picker = pg.locator("#compare-digit")
        picker.wait_for(state="visible")
        pg.locator("#compare-btn").click()
        grid = pg.locator("#compare-grid img")
        pg.wait_for_function(  # loaded, not only in the page: its width is 0 until its file arrives
            "() => { const i = document.querySelector('#compare-grid img'); return i && i.complete"
            " && i.naturalWidth > 0; }"
        )
        narrow = grid.evaluate("(i) => i.naturalWidth")
        picker.get_by_label("each digit", exact=True).check()
        wider = "(w) => (document.querySelector('#compare-grid img') || {}).naturalWidth > w"
        pg.wait_for_function(wider, arg=narrow)
        # the text and the table are other outputs of the grid's answer: waited for, not read once
        expect(pg.locator("#best-epoch")).to_contain_text(
            "one latent point drawn as each digit", timeout=60_000
        )
        expect(pg.locator("#epoch-table")).to_contain_text("Drawn as the digit asked", timeout=60_000)
    finally:
        pg.close()


def test_the_command_line_renderer_draws_a_link_s_digit(app, runs):
    from explorer import state
    from explorer.registry import ExplorerError
    from explorer.render import render_link

    z = z_of(10)
    link = state.encode(state.ViewState("cond", 1, "sliders", z, digit=5))
    data, summary = render_link(link, [runs])
    assert summary.startswith("cond epoch 1 as digit 5: P(real)")
    png = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)
    np.testing.assert_allclose(png, drawn(app, z, 5))
    assert state.decode(state.png_text(data)).digit == 5
    old, _ = render_link(state.encode(state.ViewState("cond", 1, "sliders", z)), [runs])
    png0 = np.asarray(Image.open(io.BytesIO(old)).convert("L"), np.float32)
    np.testing.assert_allclose(png0, drawn(app, z, 0))
    with pytest.raises(ExplorerError, match="whole number from 0 to 9"):
        render_link(state.encode(state.ViewState("cond", 1, "sliders", z, digit=12)), [runs])


# ----------------------------------------------------------------------------- Your digit
def test_your_digit_is_projected_into_a_conditional_run_and_opens_as_that_digit(app):
    """The Your digit tab on a conditional run: Project searches the style with G drawing the digit
    read in the drawing, says so, and Open in the sliders opens the point as that digit."""
    from explorer import yourdigit

    target, _ = app.engine.generate("cond", 1, z_of(4), 8)
    read = yourdigit.read(target)[0]
    _, md, z_txt, found = handler(app, "digit_project")(target, "cond", 1, 0, 20)
    assert found["digit"] == read and len(found["z"]) == 64
    assert f"searched as **{read}**" in md and len(z_txt.split(",")) == 64
    z, tab, picker = handler(app, "digit_open")(found)
    assert z == found["z"] and picker == str(read) and tab.selected == "sliders"
    # the bundled (unconditional) demo: no digit for the picker, which keeps its value
    _, md, _, found = handler(app, "digit_project")(target, "demo", DEMO_FINAL, 0, 5)
    assert found["digit"] is None and "searched as" not in md
    assert not isinstance(handler(app, "digit_open")(found)[2], str)  # gr.skip(): the picker stays
