"""Points you can keep and share, as a person meets them: the real app (app.py) in headless
Chromium. A link opens exactly its view; a bad link opens the nearest valid one with a notice;
Copy link and Download PNG give the same state back; dropping the PNG restores it; the command
line renders the same picture from the link."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from explorer import latent, state
from explorer.state import ViewState
from tests.conftest import ROOT
from tests.test_browser import app_in_process, browser, new_page, run_is, served_runs  # noqa: F401
from training.runfolder import list_epochs

Z = np.random.default_rng(7).standard_normal(64).astype(np.float32)


def vector_is(pg, z, timeout=60_000) -> None:
    pg.wait_for_function(
        "(v) => { const e = document.querySelector('#vector textarea'); return e && e.value === v; }",
        arg=latent.format_vector(z),
        timeout=timeout,
    )


def epoch_is(pg, label: str, timeout=20_000) -> None:
    """The epoch picker shows `label` ("epoch 2 ..."). Waited for, not read once: the answer that
    sets it also sets other boxes, and the test may see those a frame before the picker's text."""
    pg.wait_for_function(
        "(t) => ((document.querySelector('#epoch-dd input') || {}).value || '').startsWith(t)",
        arg=label,
        timeout=timeout,
    )


def notice(pg, text: str) -> None:
    pg.locator(".toast-body").get_by_text(text).first.wait_for()


@pytest.fixture(scope="module")
def server(trained_runs, tmp_path_factory):
    """The runs test_browser.py serves, served in this process as app.py serves them."""
    runs = served_runs(trained_runs, tmp_path_factory.mktemp("links"))
    with app_in_process(runs) as url:
        yield url, runs


@pytest.fixture
def context(browser):  # noqa: F811
    ctx = browser.new_context(
        viewport={"width": 1400, "height": 1000}, permissions=["clipboard-read", "clipboard-write"]
    )
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


def test_link_png_and_cli_keep_the_point(server, context, tmp_path):  # noqa: F811
    url, runs = server
    want = ViewState("tiny", 2, "sliders", Z)  # not the run (demo) nor the epoch (3) it opens on
    pg = context.new_page()
    pg.goto(url + "?" + state.encode(want))
    vector_is(pg, Z)
    run_is(pg, "tiny")  # the pickers and the tab are other outputs of the link's answer: waited for
    epoch_is(pg, "epoch 2")
    expect(pg.get_by_role("tab", name="Latent sliders")).to_have_attribute(
        "aria-selected", "true", timeout=60_000
    )
    pg.locator("#latent-caption").get_by_text("D of epoch 2").wait_for()
    assert pg.locator(".toast-body").count() == 0  # a good link: no notice

    # the Snapshot view's samples grid carries its run and epoch too
    pg.get_by_role("tab", name="Snapshot").click()
    src = urllib.parse.urljoin(url, pg.locator("#samples img").get_attribute("src"))
    grid = state.decode(state.png_text(urllib.request.urlopen(src, timeout=30).read()))
    assert (grid.run, grid.epoch, grid.view) == ("tiny", 2, "snapshot")
    pg.get_by_role("tab", name="Latent sliders").click()

    # Copy link: the textbox and the clipboard hold a link to exactly this state
    pg.get_by_role("button", name="Copy link").click()
    pg.wait_for_function("() => (document.querySelector('#link textarea') || {}).value?.includes('z=')")
    link = pg.locator("#link textarea").input_value()
    assert link.startswith(url + "?")
    got = state.decode(link)
    assert (got.run, got.epoch, got.view, got.z.tobytes()) == ("tiny", 2, "sliders", Z.tobytes())
    # the clipboard is written by a step chained after the answer, asynchronously: waited for
    pg.wait_for_function(
        "(l) => { navigator.clipboard.readText().then((t) => { window.__clip = t; }, () => {});"
        " return window.__clip === l; }",
        arg=link,
    )

    # Download PNG: the large image with the same state in its metadata
    with pg.expect_download() as dl:
        pg.get_by_role("button", name="Download PNG").click()
    png = tmp_path / "point.png"
    dl.value.save_as(png)
    assert state.decode(state.png_text(png.read_bytes())) == got

    # the command line draws the very same picture from the link
    out = tmp_path / "cli.png"
    cli = subprocess.run(
        [sys.executable, "-m", "explorer.render", "--link", link, "--runs-dir", str(runs), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(png)))
    assert state.decode(state.png_text(out.read_bytes())) == got
    bad = subprocess.run(
        [sys.executable, "-m", "explorer.render", "--link", "v=1&run=tiny&epoch=2&z=A", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: the point in the link is not valid base64 (was the link cut or edited?)"
    ]

    # elsewhere now; Back returns to the point, Forward to the random one
    pg.get_by_role("button", name="Random point").click()
    pg.wait_for_function(
        "(v) => document.querySelector('#vector textarea').value !== v", arg=latent.format_vector(Z)
    )
    elsewhere = pg.locator("#vector textarea").input_value()
    # the history records a new point in its own round trip after the point's answer: Back
    # clicked before that finds no earlier point
    expect(pg.locator("#back-btn")).to_have_text("◀ Back (1)", timeout=60_000)
    pg.locator("#back-btn").click()
    vector_is(pg, Z)
    pg.locator("#fwd-btn").click()
    pg.wait_for_function("(v) => document.querySelector('#vector textarea').value === v", arg=elsewhere)
    # dropping the PNG brings the point (and run and epoch) back
    pg.locator("#state-drop input[type=file]").set_input_files(str(png))
    vector_is(pg, Z)
    epoch_is(pg, "epoch 2")

    # a PNG without state, and a file that is no PNG: clear messages
    plain = tmp_path / "plain.png"
    Image.new("L", (28, 28)).save(plain)
    pg.locator("#state-drop input[type=file]").set_input_files(str(plain))
    notice(pg, "carries no explorer state")
    # that drop's answer empties the drop zone; a drop made before it lands can be dropped too
    expect(pg.locator("#state-drop")).not_to_contain_text("plain.png", timeout=60_000)
    (tmp_path / "notes.txt").write_text("hello")
    pg.locator("#state-drop input[type=file]").set_input_files(str(tmp_path / "notes.txt"))
    notice(pg, "not a PNG")
    vector_is(pg, Z)  # and the point on screen is untouched
    pg.close()


@pytest.mark.parametrize(
    "query, message, run, epoch",
    [
        (state.encode(ViewState("gone", 2, "sliders", Z)), "run 'gone' is not on disk", "demo", None),
        (
            state.encode(ViewState("tiny", 9, "sliders", Z)),
            "epoch 9 of 'tiny' is not on disk",
            "tiny",
            "epoch 3",
        ),
        (
            state.encode(ViewState("tiny", 2, "sliders", Z[:10])),
            "has 10 numbers but 'tiny' takes 64",
            "tiny",
            "epoch 2",
        ),
        ("v=1&run=tiny&epoch=2&view=sliders&z=A", "not valid base64", "tiny", "epoch 2"),
        ("v=7&run=tiny&epoch=2", "unknown link version '7'", "demo", None),
    ],
)
def test_a_bad_link_opens_the_nearest_valid_view_with_a_notice(server, context, query, message, run, epoch):  # noqa: F811
    url, runs = server
    if epoch is None:  # the preferred run at its last epoch on disk (the served demo's)
        epoch = f"epoch {list_epochs(runs / run)[-1]}"
    pg = context.new_page()
    pg.goto(url + "?" + query)
    notice(pg, message)
    pg.wait_for_function(
        "(r) => document.querySelector('#run-dd input').value.startsWith(r)", arg=run, timeout=60_000
    )
    epoch_is(pg, epoch)
    if run == "tiny":  # the sliders view is open, on a valid (random) point of this run
        pg.locator("#latent-caption").get_by_text(f"D of {epoch}").wait_for()
        pg.wait_for_function(
            "() => document.querySelector('#vector textarea').value.split(',').length === 64"
        )
        kept = pg.locator("#vector textarea").input_value() == latent.format_vector(Z)
        assert kept == ("epoch 9" in message)  # a good point is kept; a bad one is replaced
    pg.close()


def click_cell(pg, selector: str, row: int, rows: int, col: int, cols: int, cap: int = 15) -> None:
    """A real mouse click at the centre of a grid cell (the picture's layout: 6 px padding, a
    caption line of `cap` px under each square cell, row labels at the left)."""
    img = pg.locator(selector + " img")
    pg.wait_for_function(  # loaded, not only in the page: its size is 0 until its file arrives
        "(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector + " img",
    )
    w, h = img.evaluate("(e) => [e.naturalWidth, e.naturalHeight]")
    box = img.bounding_box()
    dy = (h - 6) / rows
    cell = dy - cap - 6
    x0 = w - cols * (cell + 6)
    x, y = x0 + col * (cell + 6) + cell / 2, 6 + row * dy + cell / 2
    pg.mouse.click(box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h)


def test_strip_png_endpoints_and_clicks_on_frames_and_cells(server, context, tmp_path):  # noqa: F811
    url, runs = server
    pg = context.new_page()
    pg.goto(url + "?" + state.encode(ViewState("tiny", 2, "sliders", Z)))
    vector_is(pg, Z)
    pg.get_by_role("tab", name="Interpolation").click()
    # the view opens with A = the point on screen and B = a random one, both drawn
    pg.wait_for_function(
        "(v) => document.querySelector('#interp-a textarea').value === v && "
        "document.querySelector('#interp-b textarea').value.split(',').length === 64",
        arg=latent.format_vector(Z),
    )
    pg.locator("#interp-a-img img").wait_for()
    pg.locator("#interp-b-img img").wait_for()
    b_text = pg.locator("#interp-b textarea").input_value()
    pg.get_by_role("button", name="B ← random").click()
    pg.wait_for_function("(v) => document.querySelector('#interp-b textarea').value !== v", arg=b_text)
    b_text = pg.locator("#interp-b textarea").input_value()
    pg.locator("#interp-btn").click()
    pg.locator("#strip img").wait_for()
    src = urllib.parse.urljoin(url, pg.locator("#strip img").get_attribute("src"))
    strip_png = urllib.request.urlopen(src, timeout=30).read()
    got = state.decode(state.png_text(strip_png))
    assert (got.run, got.epoch, got.view) == ("tiny", 2, "interp")
    assert got.a.tobytes() == latent.parse_vector(latent.format_vector(Z), 64).tobytes()
    assert latent.format_vector(got.b) == b_text

    # a click on the last of the 10 frames (one row) opens B in the sliders, at this epoch
    click_cell(pg, "#strip", 0, 1, 9, 10, cap=15 * 2)
    pg.wait_for_function(
        "() => document.querySelector('[role=tab][aria-selected=true]').innerText.includes('Latent sliders')"
    )
    b = latent.parse_vector(b_text, 64)
    pg.wait_for_function(
        "(v) => { const e = document.querySelector('#vector textarea');"
        " return e && e.value.split(', ').every((x, i) => Math.abs(parseFloat(x) - v[i]) < 2e-4); }",
        arg=b.tolist(),
    )
    epoch_is(pg, "epoch 2")

    # Compare runs as the view opens; a click on a cell opens that point at that row's epoch
    pg.get_by_role("tab", name="Compare epochs").click()
    pg.locator("#compare-grid img").wait_for()
    epochs = list_epochs(runs / "tiny")
    click_cell(pg, "#compare-grid", 0, len(epochs), 7, 8)
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    z = Engine(RunRegistry([runs])).compare_points("tiny", 8, 0)[7]
    vector_is(pg, latent.parse_vector(latent.format_vector(z), 64))
    epoch_is(pg, f"epoch {epochs[0]}")

    # the strip's PNG dropped on the app: the Interpolation view with its A and B back in the boxes
    (tmp_path / "strip.png").write_bytes(strip_png)
    pg.get_by_role("tab", name="Interpolation").click()
    pg.locator("#interp-a textarea").fill("")
    pg.locator("#interp-b textarea").fill("")
    pg.get_by_role("tab", name="Latent sliders").click()
    pg.locator("#state-drop input[type=file]").set_input_files(str(tmp_path / "strip.png"))
    pg.wait_for_function(
        "([a, b]) => (document.querySelector('#interp-a textarea') || {}).value === a && "
        "document.querySelector('#interp-b textarea').value === b",
        arg=[latent.format_vector(Z), b_text],
    )
    epoch_is(pg, "epoch 2")
    pg.close()


def test_a_run_is_renamed_and_deleted_from_the_train_tab_never_lost(server, context):  # noqa: F811
    """Rename, then Delete with the page's confirmation: the run leaves the picker and lands
    whole in the runs folder's .trash/; a cancelled Delete does nothing."""
    url, runs = server
    files = sorted(p.relative_to(runs / "broken-json") for p in (runs / "broken-json").rglob("*"))
    pg = context.new_page()
    pg.goto(url)
    pg.get_by_role("tab", name="Train").click()
    pg.locator("#train-name textarea, #train-name input").first.fill("broken-json")
    pg.locator("#manage-run").get_by_text("Delete or rename this run").click()
    pg.locator("#rename-to textarea, #rename-to input").first.fill("tiny")
    pg.locator("#rename-btn").click()
    notice(pg, "a run named 'tiny' already exists")
    pg.locator("#rename-to textarea, #rename-to input").first.fill("renamed-json")
    pg.locator("#rename-btn").click()
    pg.locator("#train-notice").get_by_text("renamed").wait_for()
    assert not (runs / "broken-json").exists() and (runs / "renamed-json" / "run.json").is_file()
    # the name box is another output of the rename's answer: waited for, not read once
    expect(pg.locator("#train-name textarea, #train-name input").first).to_have_value(
        "renamed-json", timeout=60_000
    )

    pg.once("dialog", lambda d: d.dismiss())  # cancelled: nothing happens
    pg.locator("#delete-btn").click()
    pg.wait_for_timeout(1500)
    assert (runs / "renamed-json" / "run.json").is_file()
    pg.once("dialog", lambda d: d.accept())
    pg.locator("#delete-btn").click()
    pg.locator("#train-notice").get_by_text("deleted").wait_for()
    (trashed,) = (runs / ".trash").glob("renamed-json-*")
    assert sorted(p.relative_to(trashed) for p in trashed.rglob("*")) == files  # whole
    pg.locator("#run-dd input").click()
    pg.get_by_role("option", name="tiny", exact=False).first.wait_for()
    pg.wait_for_function(  # the picker follows the disk (its refresh runs every 3 s)
        "() => ![...document.querySelectorAll('[role=option]')].some(o => o.innerText.includes('json'))",
        timeout=30_000,
    )
    pg.close()
