"""Nearest real digits: the index of a run's real training digits (training/nnindex.py), the
explorer's search over it (explorer/neighbours.py), the memorisation figure training records per
epoch, and the /neighbours endpoint of a real app. Real MNIST digits throughout; the trained run is
the session's shared 'tiny' (tests/conftest.py: 512 real digits, 3 epochs, quality on)."""

from __future__ import annotations

import base64
import io
import json
import types

import numpy as np
import pytest
from PIL import Image

from explorer import facts, figures
from explorer.engine import Engine
from explorer.neighbours import Neighbours, NeighboursUnavailable
from explorer.registry import ExplorerError, RunRegistry
from tests.conftest import MNIST, ROOT, TINY_ARGS
from training import nnindex
from training.runfolder import METRICS, NEIGHBOURS, RunFolderError, read_json, read_jsonl

N_TINY = int(TINY_ARGS[TINY_ARGS.index("--max-images") + 1])


@pytest.fixture(scope="module")
def mnist():
    from training.data import read_idx

    return read_idx(next(MNIST.glob("t10k-images*"))), read_idx(next(MNIST.glob("t10k-labels*")))


@pytest.fixture(scope="module")
def small_index(mnist):
    """An index of 2,000 real digits; the next 500 are held out (digits it has never seen)."""
    x, y = mnist
    return nnindex.build(x[:2000], y[:2000])


def brute_force(index, q: np.ndarray, k: int) -> np.ndarray:
    d = ((index.x[None] - q.reshape(len(q), 1, -1)) ** 2).sum(-1)
    return np.sort(d, 1)[:, :k]


def test_a_real_digit_is_its_own_nearest_neighbour_at_distance_0(small_index, mnist):
    x, y = mnist
    q = x[:50].astype(np.float32) / 255.0
    pos, dist = small_index.pixel_knn(q, 5)
    assert (pos[:, 0] == np.arange(50)).all() and (dist[:, 0] == 0).all()
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first
    assert (dist[:, 1] > 0.02).all()  # the next one is another digit
    # the search is exact: the same distances as measuring every digit, for digits it never saw
    held = x[2000:2040].astype(np.float32) / 255.0
    _, d = small_index.pixel_knn(held, 5)
    np.testing.assert_allclose(d, np.sqrt(brute_force(small_index, held, 5) / 784), rtol=1e-4, atol=1e-6)
    # its neighbours look like it: most held-out digits' nearest real digit has the same label
    p1, _ = small_index.pixel_knn(x[2000:2200].astype(np.float32) / 255.0, 1)
    assert np.mean(y[:2000][p1[:, 0]] == y[2000:2200]) > 0.85


def test_the_memorisation_rule_on_copies_new_digits_and_noise(small_index, mnist):
    """Copies of training digits count as memorised, real digits the index never saw about as often
    as the rule's 5th percentile says (a new digit drawn like the real ones), noise never."""
    x, _ = mnist
    thr = small_index.threshold()
    assert 0.02 < thr < np.median(small_index.ref_nn) < 0.3
    copies = small_index.memorisation(x[100:400].astype(np.float32) / 255.0)
    assert copies["memorised_share"] == 1.0 and copies["memorised_threshold"] == thr
    fresh = small_index.memorisation(x[2000:2500].astype(np.float32) / 255.0)["memorised_share"]
    assert 0.0 < fresh < 0.2, fresh
    noise = np.random.default_rng(0).uniform(0, 1, (200, 28, 28)).astype(np.float32)
    assert small_index.memorisation(noise)["memorised_share"] == 0.0


def test_training_writes_the_index_and_the_memorisation_figure(trained_runs, mnist):
    run = trained_runs / "tiny"
    index = nnindex.read(run)
    x, y = mnist
    assert len(index) == N_TINY and index.n_total == N_TINY
    assert (index.images_u8 == x[:N_TINY]).all() and (index.labels == y[:N_TINY]).all()
    assert index.features is not None and index.features.shape == (N_TINY, 128)
    with np.load(run / NEIGHBOURS) as z:
        assert z["images"].dtype == np.uint8 and z["features"].dtype == np.float16
    assert (run / NEIGHBOURS).stat().st_size < 2_000_000
    lines = [r for r in read_jsonl(run / METRICS) if r.get("kind") == "epoch"]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for r in lines:
        q = r["quality"]
        summary = read_json(run / "epochs" / f"epoch-{r['epoch']:04d}" / "summary.json")["quality"]
        assert summary["memorised_share"] == q["memorised_share"]
        assert 0.0 <= q["memorised_share"] <= 1.0
        assert q["memorised_threshold"] == pytest.approx(index.threshold(), rel=1e-5)
        assert 0.0 < q["nn_distance_median"] < 1.0
    # read through the explorer's typed facts and into Compare's rows
    info = RunRegistry([trained_runs]).get("tiny")
    assert info.epochs[-1].facts.quality.memorised_share == lines[-1]["quality"]["memorised_share"]
    rows = figures.epoch_rows(info, RunRegistry([trained_runs]).metrics("tiny"))
    assert [r["memorised"] for r in rows] == [r["quality"]["memorised_share"] for r in lines]


@pytest.mark.parametrize("bad", ["0.5", float("nan"), 7.0, -1, True, [0.1], {"a": 1}])
def test_a_bad_memorisation_value_reads_as_missing_and_breaks_nothing(bad):
    raw = {
        "epoch": 2,
        "d_loss": 1.0,
        "quality": {"fcd": 40.0, "memorised_share": bad, "memorised_threshold": bad},
    }
    s = facts.epoch_summary(raw)
    assert (
        s.quality.fcd == 40.0 and s.quality.memorised_share is None and s.quality.memorised_threshold is None
    )
    row = facts.metrics_row(dict(raw, kind="epoch"))
    assert row["quality"]["fcd"] == 40.0 and row["quality"]["memorised_share"] is None


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip_bomb() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", b"\0" * (300 << 20))
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not a readable index"),
        (b"PK\x03\x04garbage", "not a readable index"),
        (_npz(images=np.zeros((5, 28, 28), np.float32)), "'images' is not uint8"),
        (_npz(images=np.zeros((5, 28, 28), np.uint8), ids=np.arange(3)), "'ids' has shape"),
        (_npz(images=np.zeros((5, 28, 28), np.uint8), labels=np.array([object()] * 5)), "not a readable"),
        (_npz(images=np.zeros((5, 28, 28), np.uint8), features=np.full((5, 128), np.nan)), "not finite"),
        (_npz(images=np.zeros((1, 28, 28), np.uint8)), "at least 2"),
    ],
)
def test_a_damaged_index_file_is_refused_in_one_line(tmp_path, data, reason):
    (tmp_path / NEIGHBOURS).write_bytes(data)
    with pytest.raises(RunFolderError, match=reason) as exc:
        nnindex.read(tmp_path)
    assert "\n" not in str(exc.value)


def test_an_index_that_unpacks_to_gigabytes_is_refused_unread(tmp_path):
    (tmp_path / NEIGHBOURS).write_bytes(_zip_bomb())
    with pytest.raises(RunFolderError, match="unpacks to more than"):
        nnindex.read(tmp_path)


def test_the_explorer_finds_a_runs_digits_and_their_look_alikes(trained_runs, mnist):
    x, y = mnist
    nb = Neighbours(RunRegistry([trained_runs]))
    out = nb.query("tiny", x[:3].astype(np.float32) / 255.0, 4)
    assert out["source"] == NEIGHBOURS and out["n_index"] == N_TINY and out["note"] == ""
    for i, r in enumerate(out["results"]):
        px, ft = r["pixels"], r["features"]
        assert px[0]["training_index"] == i and px[0]["distance"] == 0.0 and px[0]["label"] == y[i]
        assert ft[0]["training_index"] == i and ft[0]["distance"] < 0.05  # features stored as float16
        for hits in (px, ft):
            d = [h["distance"] for h in hits]
            assert d == sorted(d) and len(d) == 4
    assert nb.get("tiny") is nb.get("tiny")  # loaded once
    with pytest.raises(ExplorerError, match="k must be"):
        nb.query("tiny", x[:1] / 255.0, 0)
    with pytest.raises(ExplorerError, match="28x28"):
        nb.query("tiny", np.zeros((5, 5)), 3)
    with pytest.raises(ExplorerError, match="unknown run"):
        nb.query("../etc", x[:1] / 255.0, 3)


def test_a_corrupt_or_missing_index_says_so_and_the_rest_keeps_working(runs_copy, mnist):
    x, _ = mnist
    run = runs_copy / "tiny"
    (run / NEIGHBOURS).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RunFolderError, match="not a readable index"):
        nnindex.read(run)
    # its training data is still readable (run.json records where): rebuilt, and said so
    out = Neighbours(RunRegistry([runs_copy])).query("tiny", x[:1] / 255.0, 3)
    assert out["results"][0]["pixels"][0]["distance"] == 0.0
    assert "not a readable index" in out["note"] and "rebuilt" in out["source"]
    # no index and no data: one clear line, and the explorer goes on
    (run / NEIGHBOURS).unlink()
    info = json.loads((run / "run.json").read_text())
    info["dataset"]["source"] = info["config"]["data"] = str(runs_copy / "gone")
    (run / "run.json").write_text(json.dumps(info))
    reg = RunRegistry([runs_copy])
    nb = Neighbours(reg)
    with pytest.raises(NeighboursUnavailable) as exc:
        nb.query("tiny", x[:1] / 255.0, 3)
    msg = str(exc.value)
    assert "neighbours.npz is missing" in msg and "not on this machine" in msg and "\n" not in msg
    from explorer.ui.nearest import strip_html

    ctx = types.SimpleNamespace(neighbours=nb)
    assert "unavailable" in strip_html(ctx, "tiny", x[0] / 255.0)  # a note in the view, no error
    img, p = Engine(reg).generate("tiny", 3, np.zeros(64, np.float32))
    assert img.shape == (28, 28) and 0 <= p <= 1


def test_a_run_of_other_images_says_neighbours_are_for_28x28_grey_digits(runs_copy, mnist):
    run = runs_copy / "tiny"
    (run / NEIGHBOURS).unlink()
    info = json.loads((run / "run.json").read_text())
    info["image_shape"] = [32, 32, 3]
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(NeighboursUnavailable, match="28x28 grey digits, and this run's images are 32x32x3"):
        Neighbours(RunRegistry([runs_copy])).query("tiny", mnist[0][:1] / 255.0, 3)
    with pytest.raises(ValueError, match="28x28 grey"):
        nnindex.build(np.zeros((4, 32, 32, 3), np.uint8))


def test_the_demo_without_an_index_is_rebuilt_from_its_recorded_data(mnist):
    """runs/demo ships no neighbours.npz (it stays under 25 MB): its run.json's data, found from
    the checkout, gives the same 10,000 digits training saw."""
    assert not (ROOT / "runs" / "demo" / NEIGHBOURS).exists()
    x, _ = mnist
    out = Neighbours(RunRegistry([ROOT / "runs"])).query("demo", x[[7, 9000]] / 255.0, 2)
    assert out["n_index"] == 10_000 and "../shared/data/mnist" in out["source"]
    assert [r["pixels"][0]["training_index"] for r in out["results"]] == [7, 9000]
    assert [r["features"][0]["training_index"] for r in out["results"]] == [7, 9000]


def png_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_neighbours_endpoint_answers_through_a_real_app(trained_runs, tmp_path, mnist):
    """The app built in this process (build_app, as app.py does), served on a free port."""
    from gradio_client import Client

    from explorer.ui import build_app
    from tests.test_browser import free_port

    x, y = mnist
    app = build_app([trained_runs], tmp_path / "train")
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        c = Client(f"http://127.0.0.1:{port}/", verbose=False, ssl_verify=False)
        assert "/neighbours" in c.view_api(print_info=False, return_format="dict")["named_endpoints"]
        j = json.loads(c.predict(png_uri(Image.fromarray(x[5])), "tiny", 3, api_name="/neighbours"))
        assert j["pixels"][0]["training_index"] == 5 and j["pixels"][0]["distance"] == 0.0
        assert j["pixels"][0]["label"] == y[5] and j["features"][0]["training_index"] == 5
        assert j["pixels"][1]["image"].startswith("data:image/png;base64,") and len(j["pixels"]) == 3
        # an upload of another size (dark ink on white paper) is prepared as in Your digit
        page = Image.new("L", (200, 300), 255)
        page.paste(Image.fromarray(255 - x[5]).resize((196, 196), Image.BICUBIC), (2, 52))
        j = json.loads(c.predict(png_uri(page), "tiny", 1, api_name="/neighbours"))
        assert j["pixels"][0]["label"] == y[5] and j["pixels"][0]["distance"] < 0.15
        for args, msg in (
            (("/etc/passwd", "tiny", 3), "data URI"),
            ((png_uri(Image.fromarray(x[5])), "nope", 3), "unknown run"),
            ((png_uri(Image.fromarray(x[5])), "tiny", 1e30), "k must be"),
        ):
            with pytest.raises(Exception, match=msg):
                c.predict(*args, api_name="/neighbours")
        assert json.loads(c.predict(api_name="/list_runs"))[0]["name"] == "tiny"  # still serving
        # the sliders' strip (the page's own event): nothing while the toggle is off, else the
        # nearest real digits of the point's image by pixels and by features
        vec = ", ".join(["0.1"] * 64)
        assert c.predict("tiny", 3, vec, False, None, api_name="/nn_point") == ""
        html = c.predict("tiny", 3, vec, True, None, api_name="/nn_point")
        assert "by pixels" in html and "by the evaluator's features" in html and html.count("<img") == 10
    finally:
        app.close()
