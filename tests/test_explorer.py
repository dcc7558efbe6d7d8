"""The explorer page of vaekit serve: what its sliders and map are built on (/space), the page
served whole from the package, and the page driven in a real headless Chromium against a real
uvicorn server: a slider moves the decoded image, a click on the map decodes that point, two
picked examples are interpolated, and a CSV uploaded to a detector shows its scores.

Without Playwright or a Chromium the browser tests say so and skip; CI sets
VAEKIT_REQUIRE_BROWSER=1 (``.ci/run`` installs Debian's chromium), where they fail instead."""
from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import vaekit  # noqa: E402
from helpers import TINY, live_server, make_blobs, png_bytes  # noqa: E402
from vaekit.explorer import MAX_SLIDERS  # noqa: E402
from vaekit.serve import create_app  # noqa: E402

# As root in a container, with the machine's network closed: no sandbox, no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
OUTLIERS = [10, 25, 40]  # rows of the scored CSV planted far from the fitted data


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explorer")
    x, y = make_blobs()
    np.savez(tmp / "blobs.npz", X=x, y=y)
    # long enough that the three shapes (bar, column, square) lie apart in the code (15 epochs: not yet)
    vaekit.train(str(tmp / "blobs.npz"), out=tmp / "vae", **{**TINY, "epochs": 40})
    vaekit.train(str(tmp / "blobs.npz"), out=tmp / "wide", **{**TINY, "latent_dim": 20, "epochs": 2})
    vaekit.train(x, out=tmp / "array", **{**TINY, "epochs": 1})  # an in-memory array: no data to map
    vaekit.train(str(tmp / "blobs.npz"), out=tmp / "ae", **{**TINY, "model": "ae", "epochs": 1})
    rng = np.random.default_rng(0)
    columns = ["a", "b", "c", "d"]
    table = rng.normal(size=(300, 4))
    kinds = np.where(table[:, 0] > 0, "high", "low")  # labels given as names: the map's legend shows them
    (tmp / "table.csv").write_text("\n".join([",".join([*columns, "label"])] + [
        ",".join([*(f"{v:.5f}" for v in row), kind]) for row, kind in zip(table, kinds)]) + "\n")
    vaekit.train(str(tmp / "table.csv"), out=tmp / "tab", **{**TINY, "epochs": 2})
    vaekit.AnomalyDetector(epochs=20, random_state=0).fit(table).save(tmp / "det")
    vaekit.AnomalyDetector(epochs=20, random_state=0).fit(x.astype(np.float32) / 255).save(tmp / "det-images")
    scored = rng.normal(size=(60, 4))
    scored[OUTLIERS] = 8.0
    scored[OUTLIERS[0], 0] = 1e20  # so far out that its score overflows: still ranked first
    # a quoted header with a comma in it: the page shows each value under its own column
    np.savetxt(tmp / "scored.csv", scored, delimiter=",", header='"a,1",b,c,d', comments="", fmt="%.5f")
    return {"tmp": tmp, "images": x.astype(np.float32) / 255, "labels": y}


# -- what the page is built on (no browser) -----------------------------------------------------------
def test_the_page_comes_whole_from_the_server_with_nothing_from_elsewhere(folders):
    client = TestClient(create_app(folders["tmp"] / "vae"))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]  # the browser loads nothing else
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert linked == ["static/explorer.css", "static/explorer.js"]
    for name, kind in (("explorer.js", "text/javascript"), ("explorer.css", "text/css")):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert not re.search(r"https?://", asset.text)  # no CDN, no fonts from the web: it works offline
    assert client.get("/static/serve.py").json()["error"].startswith("no file 'serve.py'")
    assert client.get("/static/..%2Fserve.py").status_code == 404
    assert client.get("/favicon.ico").status_code == 204


def test_sliders_and_map_span_the_codes_of_the_runs_own_data(folders):
    run = vaekit.load(folders["tmp"] / "vae")
    space = TestClient(create_app(folders["tmp"] / "vae")).get("/space").json()
    codes = run.encode(folders["images"])  # all 240 samples: fewer than the map holds
    sliders = space["sliders"]
    assert sliders["basis"] == "dimensions" and sliders["names"] == ["z1", "z2", "z3", "z4"]
    np.testing.assert_allclose(sliders["start"], codes.mean(0), atol=1e-4)  # the sliders start at the mean code
    assert np.all(np.asarray(sliders["low"]) < codes.mean(0)) and np.all(codes.mean(0) < np.asarray(sliders["high"]))
    # the map: the codes on their first two principal components; a point decodes as origin + p @ axes
    m = space["map"]
    points, origin, axes = np.asarray(m["points"]), np.asarray(m["origin"]), np.asarray(m["axes"])
    assert points.shape == (240, 2) and m["labels"] == folders["labels"].tolist()
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-6)
    np.testing.assert_allclose(origin, codes.mean(0), atol=1e-4)
    np.testing.assert_allclose(points, (codes - origin) @ axes.T, atol=1e-3)
    centred = codes - codes.mean(0)
    top = np.linalg.svd(centred, compute_uv=False)[:2] ** 2 / (len(codes) - 1)
    np.testing.assert_allclose(points.var(0, ddof=1), top, rtol=1e-3)  # the plane of greatest spread
    # examples to interpolate between are samples of the data, in its own layout
    examples = np.asarray(space["examples"]["inputs"])
    assert examples.shape == (16, 8, 8)
    picks = [int(np.argmin(np.abs(folders["images"] - e).sum((1, 2)))) for e in examples]
    np.testing.assert_allclose(examples, folders["images"][picks], atol=1e-4)
    assert space["examples"]["labels"] == folders["labels"][picks].tolist()


def named_shapes_cvae(tmp_path) -> None:
    """Image folders of the three shapes: shapes/ with a subfolder per shape (bar, column,
    square), other/ with columns and squares only; a cvae trained on shapes/ as tmp_path/run."""
    x, y = make_blobs(60)
    for i, (image, label) in enumerate(zip(x, y)):
        for folder, names in (("shapes", ["bar", "column", "square"]), ("other", ["column", "square", "square"])):
            shape = tmp_path / folder / names[label]
            shape.mkdir(parents=True, exist_ok=True)
            (shape / f"{i}.png").write_bytes(png_bytes(image / 255))
    vaekit.train(str(tmp_path / "shapes"), out=tmp_path / "run", **{**TINY, "model": "cvae", "epochs": 1})


def test_classes_the_data_names_keep_their_names(folders, tmp_path):
    """Numbered labels stay numbers; a CSV's label text and an image folder's subfolders name
    them. The served data's names label its points; a cvae's classes keep its training data's."""
    assert TestClient(create_app(folders["tmp"] / "vae")).get("/space").json()["class_names"] is None
    assert TestClient(create_app(folders["tmp"] / "tab")).get("/space").json()["class_names"] == ["high", "low"]
    named_shapes_cvae(tmp_path)
    space = TestClient(create_app(tmp_path / "run")).get("/space").json()
    assert space["class_names"] == space["model_classes"] == ["bar", "column", "square"]
    assert set(space["map"]["labels"]) == {0, 1, 2}
    space = TestClient(create_app(tmp_path / "run", data=str(tmp_path / "other"))).get("/space").json()
    assert space["class_names"] == ["column", "square"] and space["model_classes"] == ["bar", "column", "square"]


def test_a_wide_code_gets_sliders_along_its_principal_directions(folders):
    run = vaekit.load(folders["tmp"] / "wide")
    sliders = TestClient(create_app(folders["tmp"] / "wide")).get("/space").json()["sliders"]
    directions = np.asarray(sliders["directions"])
    assert sliders["basis"] == "principal" and directions.shape == (MAX_SLIDERS, 20)
    np.testing.assert_allclose(directions @ directions.T, np.eye(MAX_SLIDERS), atol=1e-6)
    spread = np.asarray(sliders["high"])
    assert np.all(np.diff(spread) <= 1e-9) and np.allclose(sliders["low"], -spread)  # largest spread first
    codes = run.encode(np.load(folders["tmp"] / "blobs.npz")["X"])
    np.testing.assert_allclose(sliders["origin"], codes.mean(0), atol=1e-4)  # every slider at 0 is the mean code
    shares = [int(re.search(r"\((\d+)%\)", name).group(1)) for name in sliders["names"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 101


def test_without_data_to_read_a_vae_still_gets_sliders_across_its_prior(folders, tmp_path):
    space = TestClient(create_app(folders["tmp"] / "array")).get("/space").json()
    assert space["map"] is None and "in-memory array" in space["note"] and "--data" in space["note"]
    assert space["sliders"]["basis"] == "prior" and space["sliders"]["low"] == [-3.0] * 4
    # the run's own data moved away: the page says so
    moved = tmp_path / "moved"
    shutil.copytree(folders["tmp"] / "vae", moved)
    config = (moved / "config.json").read_text().replace(str(folders["tmp"] / "blobs.npz"), str(tmp_path / "gone.npz"))
    (moved / "config.json").write_text(config)
    space = TestClient(create_app(moved)).get("/space").json()
    assert space["map"] is None and "gone.npz" in space["note"] and space["sliders"]["basis"] == "prior"
    # --data chooses what is mapped; data the model cannot take stops the server at its start
    np.save(tmp_path / "other.npy", np.zeros((5, 3, 3), np.uint8))
    with pytest.raises(vaekit.VaekitError, match="8x8"):
        create_app(folders["tmp"] / "vae", data=str(tmp_path / "other.npy"))
    # a detector has no latent space to explore, and takes no --data
    assert TestClient(create_app(folders["tmp"] / "det")).get("/space").status_code == 404
    with pytest.raises(vaekit.VaekitError, match="data"):
        create_app(folders["tmp"] / "det", data=str(tmp_path / "other.npy"))


def test_with_an_api_key_the_page_loads_but_the_model_answers_only_with_the_key(folders):
    client = TestClient(create_app(folders["tmp"] / "vae", api_key="s3cret"))
    assert client.get("/").status_code == 200 and client.get("/static/explorer.js").status_code == 200
    assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]
    assert client.get("/space").json()["error"].startswith("this server needs its API key")
    assert client.get("/space", headers={"X-API-Key": "guess"}).json()["error"].startswith("wrong API key")
    assert client.get("/space", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_data_chosen_for_the_map_that_does_not_fit_stops_the_server_at_once(folders, tmp_path):
    np.save(tmp_path / "unlabelled.npy", np.zeros((20, 8, 8), np.uint8))
    vaekit.train(str(folders["tmp"] / "blobs.npz"), out=tmp_path / "cvae", **{**TINY, "model": "cvae", "epochs": 1})
    with pytest.raises(vaekit.VaekitError, match="has no labels"):
        create_app(tmp_path / "cvae", data=str(tmp_path / "unlabelled.npy"))
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(vaekit.VaekitError, match="at least 2"):
        create_app(folders["tmp"] / "vae", data=str(tmp_path / "one.npy"))


# -- the page in a real browser ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    why, path = None, os.environ.get("VAEKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "Playwright is not installed (pip install -e '.[test]')"
    if why is None and path is None:
        why = "no Chromium here (apt-get install chromium, or set VAEKIT_CHROMIUM to its path)"
    if why:
        if os.environ.get("VAEKIT_REQUIRE_BROWSER"):
            pytest.fail(f"the browser tests must run here, but {why}")
        pytest.skip(why)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """Opens the explorer of a live server; the test fails on any script error of the page."""
    pages, errors = [], []

    def console(message):  # a blocked load (the page's policy) is said here; a 4xx the page shows is not a fault
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    def opener(url):
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", console)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert not errors, errors


def renders(page, element: str, at_least: int) -> None:
    """Waits until ``element`` has shown at least ``at_least`` outputs."""
    page.wait_for_function("([id, n]) => Number(document.getElementById(id).dataset.renders || 0) >= n",
                           arg=[element, at_least], timeout=30_000)


def shown_image(page, element: str, cells: int = 1) -> np.ndarray:
    """The pictures an element shows, read back from the browser as (cells, 8, 8) gray values in
    [0, 1] (the server's grid: 2 px padding, each 8x8 image enlarged 4x)."""
    pixels = page.evaluate(f"""() => {{
        const img = document.querySelector('#{element} img');
        const c = document.createElement('canvas');
        [c.width, c.height] = [img.naturalWidth, img.naturalHeight];
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
    }}""")
    width = 2 + cells * 34
    gray = np.asarray(pixels, np.float64).reshape(-1, width, 4)[..., 0] / 255
    return np.stack([gray[2:34:4, 2 + 34 * k:34 + 34 * k:4] for k in range(cells)])


def test_moving_a_slider_changes_the_decoded_image(folders, open_page):
    run = vaekit.load(folders["tmp"] / "vae")
    with live_server(create_app(folders["tmp"] / "vae")) as url:
        page = open_page(url)
        renders(page, "decoded", 1)
        space = httpx.get(url + "/space").json()
        start = shown_image(page, "decoded")[0]
        np.testing.assert_allclose(start, run.decode([space["sliders"]["start"]])[0], atol=0.01)
        high = np.asarray(space["sliders"]["high"])
        k = int(np.argmax(high - space["sliders"]["low"]))  # the dimension the codes use most
        page.locator("#sliders input").nth(k).focus()
        page.keyboard.press("End")  # as a user does: the slider to its far end
        renders(page, "decoded", 2)
        moved = shown_image(page, "decoded")[0]
        value = float(page.locator("#sliders input").nth(k).input_value())
        assert abs(value - high[k]) < (high[k] - space["sliders"]["low"][k]) / 100  # at the end of its range
        assert page.locator("#sliders output").nth(k).text_content() == f"{value:.2f}"
        code = np.asarray(space["sliders"]["start"])
        code[k] = value
        np.testing.assert_allclose(moved, run.decode([code])[0], atol=0.01)  # exactly that code, decoded
        assert np.abs(moved - start).max() > 0.1
        page.locator("#reset").click()
        renders(page, "decoded", 3)
        np.testing.assert_allclose(shown_image(page, "decoded")[0], start, atol=0.01)


def test_a_click_on_the_map_decodes_the_code_at_that_point(folders, open_page):
    images, labels = folders["images"], folders["labels"]
    with live_server(create_app(folders["tmp"] / "vae")) as url:
        page = open_page(url)
        m = httpx.get(url + "/space").json()["map"]
        points = np.asarray(m["points"])
        canvas = page.locator("#map").bounding_box()
        lo, hi = points.min(0), points.max(0)
        for shape in range(3):  # click where each shape's codes lie: that shape comes back
            target = np.median(points[labels == shape], 0)
            x = 16 + (target[0] - lo[0]) / (hi[0] - lo[0]) * (canvas["width"] - 32)
            y = canvas["height"] - 16 - (target[1] - lo[1]) / (hi[1] - lo[1]) * (canvas["height"] - 32)
            page.locator("#map").click(position={"x": x, "y": y})
            renders(page, "map-decoded", shape + 1)
            decoded = shown_image(page, "map-decoded")[0]
            means = np.stack([images[labels == k].mean(0) for k in range(3)])
            assert np.argmin(((means - decoded) ** 2).sum((1, 2))) == shape
            said = page.locator("#map-code").text_content()
            shown = [float(v) for v in re.findall(r"PC\d (-?[\d.e-]+)", said)]
            np.testing.assert_allclose(shown, target, atol=0.05 * (hi - lo).max())


def test_two_picked_examples_are_interpolated_and_samples_follow_the_temperature(folders, open_page):
    run = vaekit.load(folders["tmp"] / "vae")
    with live_server(create_app(folders["tmp"] / "vae")) as url:
        page = open_page(url)
        examples = httpx.get(url + "/space").json()["examples"]["inputs"]
        page.locator("#examples button").nth(0).click()
        page.locator("#examples button").nth(5).click()
        renders(page, "interpolation", 1)
        path = shown_image(page, "interpolation", cells=10)
        codes = run.encode(np.asarray(examples, np.float32)[[0, 5]])
        ends = run.decode(codes)
        np.testing.assert_allclose(path[[0, -1]], ends, atol=0.01)  # from A's code to B's
        page.locator("#steps").fill("4")
        page.locator("#steps").dispatch_event("change")
        renders(page, "interpolation", 2)
        assert page.evaluate("document.querySelector('#interpolation img').naturalWidth") == 2 + 4 * 34
        # samples: a new draw, and a lower temperature stays nearer the prior's centre
        renders(page, "samples", 1)
        first = page.locator("#samples img").screenshot()
        page.locator("#resample").click()
        renders(page, "samples", 2)
        assert page.locator("#samples img").screenshot() != first
        page.locator("#temperature").fill("0.1")
        renders(page, "samples", 3)
        cold = shown_image(page, "samples", cells=8)
        np.testing.assert_allclose(cold, run.sample(32, seed=1, temperature=0.1)[:8], atol=0.01)


def test_a_table_run_shows_decoded_rows_in_its_columns(folders, open_page):
    with live_server(create_app(folders["tmp"] / "tab")) as url:
        page = open_page(url)
        renders(page, "decoded", 1)
        assert page.locator("#decoded th").all_text_contents() == ["a", "b", "c", "d"]
        before = page.locator("#decoded td").all_text_contents()
        page.locator("#sliders input").first.focus()
        page.keyboard.press("Home")
        renders(page, "decoded", 2)
        assert page.locator("#decoded td").all_text_contents() != before
        assert page.locator("#upload-pair").is_hidden()  # no image upload for a table
        assert page.locator("#legend span").all_text_contents() == ["high", "low"]  # the CSV's own label names


def test_a_csv_uploaded_to_a_detector_shows_scores_threshold_and_the_planted_outliers(folders, open_page):
    with live_server(create_app(folders["tmp"] / "det")) as url:
        page = open_page(url)
        assert "a CSV table with the 4 columns" in page.locator("#detector-hint").text_content()
        page.locator("#score-files").set_input_files(str(folders["tmp"] / "scored.csv"))
        page.wait_for_selector("#top tr[data-index]")
        assert page.locator("#score-summary").text_content().startswith("scored.csv: 60 inputs scored; ")
        assert page.locator("#histogram").is_visible()
        ranked = page.locator("#top tr[data-index]").evaluate_all("rows => rows.map(r => Number(r.dataset.index))")
        assert sorted(ranked[:3]) == OUTLIERS  # the most anomalous rows are the planted ones
        assert page.locator("#top th").nth(4).text_content() == "a,1"
        cells = page.locator("#top tr[data-index]").first.locator("td")
        assert [cells.nth(k).text_content() for k in (3, 4)] == ["yes", "100000000000000000000.00000"]
        # a table of the wrong width: the server's one line, and the results of the last file go
        (folders["tmp"] / "narrow.csv").write_text("a,b\n1,2\n")
        page.locator("#score-files").set_input_files(str(folders["tmp"] / "narrow.csv"))
        page.wait_for_selector("#message:not([hidden])")
        assert "each input must have shape [4]" in page.locator("#message").text_content()
        assert page.locator("#top tr").count() == 0 and page.locator("#histogram").is_hidden()
        page.locator("#score-files").set_input_files(str(folders["tmp"] / "scored.csv"))  # and the page goes on
        page.wait_for_selector("#top tr[data-index]")
        assert page.locator("#message").is_hidden()


def test_a_server_with_a_key_asks_for_it_and_then_works(folders, open_page):
    with live_server(create_app(folders["tmp"] / "vae", api_key="s3cret")) as url:
        page = open_page(url)
        assert page.locator("#key-form").is_visible() and "API key" in page.locator("#message").text_content()
        page.locator("#key").fill("s3cret")
        page.locator("#key-form button").click()
        renders(page, "decoded", 1)
        assert page.locator("#summary").text_content().startswith("vae: a vae with a 4-dimensional code")


def save_png(path, image: np.ndarray) -> str:
    path.write_bytes(png_bytes(image))
    return str(path)


def test_two_uploaded_images_are_interpolated(folders, open_page, tmp_path):
    run, images = vaekit.load(folders["tmp"] / "vae"), folders["images"]
    files = [save_png(tmp_path / f"{i}.png", images[i]) for i in (3, 7)]
    with live_server(create_app(folders["tmp"] / "vae")) as url:
        page = open_page(url)
        page.locator("#pair-files").set_input_files(files)
        renders(page, "interpolation", 1)
        path = shown_image(page, "interpolation", cells=10)
        np.testing.assert_allclose(path[[0, -1]], run.reconstruct(images[[3, 7]]), atol=0.02)
        page.locator("#pair-files").set_input_files(files[:1])  # one image is not a pair: said, not sent
        page.wait_for_selector("#message:not([hidden])")
        assert "exactly two images" in page.locator("#message").text_content()


def test_images_uploaded_to_a_detector_show_the_odd_one_first(folders, open_page, tmp_path):
    images = folders["images"]
    odd = 1 - images[0]  # a negative: nothing like the fitted shapes
    files = [save_png(tmp_path / f"{i}.png", images[i]) for i in range(5)] + [save_png(tmp_path / "odd.png", odd)]
    with live_server(create_app(folders["tmp"] / "det-images")) as url:
        page = open_page(url)
        assert "PNG images of 8x8 pixels" in page.locator("#detector-hint").text_content()
        page.locator("#score-files").set_input_files(files)
        page.wait_for_selector("#top tr[data-index]")
        first = page.locator("#top tr[data-index]").first
        assert [first.locator("td").nth(k).text_content() for k in (1, 3)] == ["odd.png", "yes"]
        assert first.locator("img").evaluate("img => img.complete && img.naturalWidth") == 8  # the upload itself
        assert page.locator("#score-summary").text_content().startswith("6 files: 6 inputs scored; ")


def test_an_autoencoder_samples_from_the_density_fitted_to_its_codes(folders, open_page):
    with live_server(create_app(folders["tmp"] / "ae")) as url:
        page = open_page(url)
        renders(page, "decoded", 1)
        assert page.locator("#summary").text_content().startswith("ae: an ae with a 4-dimensional code")
        renders(page, "samples", 1)
        # no N(0, I) to offer: an autoencoder's codes were never pulled towards it
        assert page.locator("#prior option").all_text_contents() == ["gmm"]
        assert page.locator("#map").is_visible() and page.locator("#examples button").count() == 16


def test_the_prior_chosen_on_the_page_is_the_one_sampled(folders, open_page):
    with live_server(create_app(folders["tmp"] / "vae")) as url:
        page = open_page(url)
        renders(page, "samples", 1)
        assert page.locator("#prior option").all_text_contents() == ["normal", "gmm"]
        assert page.locator("#prior").input_value() == "gmm"  # the run's own
        with page.expect_request(lambda r: "/sample?" in r.url and "prior=normal" in r.url):
            page.locator("#prior").select_option("normal")
        renders(page, "samples", 2)


def test_a_cvae_offers_its_classes_by_the_names_it_was_trained_on(open_page, tmp_path):
    named_shapes_cvae(tmp_path)
    with live_server(create_app(tmp_path / "run", data=str(tmp_path / "other"))) as url:
        page = open_page(url)
        renders(page, "samples", 1)
        assert page.locator("#label option").all_text_contents() == ["bar", "column", "square"]
        assert page.locator("#legend span").all_text_contents() == ["column", "square"]  # the served data's


def test_principal_sliders_only_go_where_the_codes_vary(folders, tmp_path):
    x = np.load(folders["tmp"] / "blobs.npz")["X"][:5]
    np.save(tmp_path / "five.npy", x)
    sliders = TestClient(create_app(folders["tmp"] / "wide", data=str(tmp_path / "five.npy"))).get("/space").json()
    assert sliders["sliders"]["basis"] == "principal" and len(sliders["sliders"]["names"]) <= 4  # 5 codes span 4

