"""The sliders in a real browser: JupyterLab served from a temporary folder, driven through headless Chromium.

nbval cannot see widgets; this test can. It runs every cell of chapters 1, 2 and 4 in JupyterLab, moves one
slider per chapter to exact values by typing into its readout, and checks that the numbers the page shows are
the ones the package computes and that the figure changed. Needs Chromium (Debian: `apt-get install chromium`,
or point LORA_EDU_CHROMIUM at a Chromium/Chrome binary) and Playwright (`pip install -e .[dev]`). Screenshots
go to test-artifacts/browser/. Run it alone with `.venv/bin/python -m pytest -m browser`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHAPTERS = ["01_matrix_rank.ipynb", "02_low_rank_factorization.ipynb", "04_lora.ipynb"]
RUN_ALL_TIMEOUT = 300  # seconds for one notebook's cells (chapter 4 trains small networks)


def _chromium() -> str | None:
    found = os.environ.get("LORA_EDU_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.access(found, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """End the server and every kernel it started: they share one process group."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with no token, serving a copy of the notebooks; stopped by process id, always."""
    if _chromium() is None:
        message = ("no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) or set "
                   "LORA_EDU_CHROMIUM to a Chromium or Chrome binary")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.sync_api", reason="Playwright is missing: pip install -e .[dev]")
    tmp = tmp_path_factory.mktemp("lab")
    root, home = tmp / "notebooks", tmp / "home"
    root.mkdir()
    for name in CHAPTERS:
        shutil.copy(ROOT / "notebooks" / name, root / name)
    settings = home / "settings"
    for plugin, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "notebook-extension/tracker": {"windowingMode": "none"}}.items():
        f = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "ws"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"))
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp / "jupyter.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=_chromium(), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def notebook(lab, browser):
    """A page with one chapter open and every cell run; fails the test on any console error."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

    def open_and_run(name: str):
        page.goto(f"{lab}/lab/tree/{name}?reset")               # a fresh workspace: this notebook alone
        page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
        _wait_idle(page, 120)
        page.locator(".jp-Notebook").first.click()
        page.get_by_role("menuitem", name="Edit", exact=True).click()       # the committed outputs go first
        page.get_by_role("menuitem", name="Clear Outputs of All Cells", exact=True).click()
        page.locator(".jp-CodeCell .jp-InputPrompt").first.filter(has_text="[ ]:").wait_for(timeout=10_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        deadline = time.time() + RUN_ALL_TIMEOUT
        time.sleep(1)
        errors_shown = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        while True:
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
                break
            raised = [t for t in errors_shown.all_inner_texts() if "Traceback" in t or "Error" in t]
            if raised or time.time() > deadline:
                page.screenshot(path=ARTIFACTS / f"{Path(name).stem}-failed.png", full_page=True)
                pytest.fail(f"{name}: a cell raised in the browser:\n" + "\n".join(raised) if raised else
                            f"{name}: not every cell ran within {RUN_ALL_TIMEOUT} s")
            time.sleep(1)
        _wait_idle(page, 60)
        return page

    yield open_and_run
    page.close()
    assert not errors, "the browser logged errors:\n" + "\n".join(errors)


def _wait_idle(page, seconds: float) -> None:
    """Until the kernel status in the notebook toolbar reads idle."""
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'] >> visible=true").first.wait_for(timeout=seconds * 1000)


def _panel(page, code: str):
    """The widget panel displayed by the code cell whose source contains `code`."""
    cell = page.locator(".jp-CodeCell").filter(has_text=code).first
    cell.scroll_into_view_if_needed()
    panel = cell.locator(".jp-OutputArea-output .widget-vbox").first
    panel.wait_for(timeout=30_000)
    return panel


def _type_readout(panel, index: int, text: str) -> None:
    """Set a slider exactly, as a learner can: click its number, replace it, press Enter."""
    readout = panel.locator(".widget-readout").nth(index)
    readout.click()
    readout.press("Control+a")
    readout.type(text)
    readout.press("Enter")


def _readout_after(panel, pattern: str, timeout: float = 30) -> str:
    """The panel's HTML readout once it matches `pattern` (the kernel has answered the slider move)."""
    html = panel.locator(".widget-html-content").first
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = html.inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"the readout never showed {pattern!r}; it shows {html.inner_text()!r}")


def test_photo_rank_slider(notebook):
    from lora_edu import data
    from lora_edu.svd import SVDFactorizer

    page = notebook("02_low_rank_factorization.ipynb")
    panel = _panel(page, "widgets.photo_rank_slider(photo")
    f = SVDFactorizer(data.photo())
    figure = panel.locator("img").nth(1)                              # left: the original; right: rank r
    shots = [figure.screenshot(path=ARTIFACTS / "ch2-photo-r20.png")]
    for r in (1, 5, 80):
        _type_readout(panel, 0, str(r))
        text = _readout_after(panel, rf"rank {r}:")
        st = f.stored(r)                                               # to the digits shown: 12.34 %, 5.9 %
        assert f"relative error {f.error(r):.2%} · stores {st.numbers:,} numbers = {st.share:.1%} of" in text
        time.sleep(0.5)                                                # let the new PNG paint
        shots.append(figure.screenshot(path=ARTIFACTS / f"ch2-photo-r{r}.png"))
    distinct = len(set(shots))
    assert distinct == len(shots), f"the reconstruction did not change with the rank: {distinct} different images in {len(shots)} screenshots"


def test_noise_slider(notebook):
    from lora_edu.rank import singular_values

    page = notebook("01_matrix_rank.ipynb")
    panel = _panel(page, "widgets.noise_rank_slider(A")
    A = np.outer([1, 2, 3], [1, 2, 3]).astype(float)                   # chapter 1's rank-1 example
    E = np.random.default_rng(0).standard_normal(A.shape)              # the slider's fixed noise pattern
    shots = [panel.locator("img").first.screenshot(path=ARTIFACTS / "ch1-noise-1e-09.png")]
    for noise, tol in ((1e-12, 1e-10), (1e-3, 1e-10), (1e-3, 1e-2)):
        _type_readout(panel, 0, f"{noise:.0e}")
        _type_readout(panel, 1, f"{tol:.0e}")
        s = singular_values(A + noise * E)
        rank = int((s > tol).sum())
        text = _readout_after(panel, rf"noise {noise:.1e}.*tolerance {tol:.1e}: {rank}\b")
        assert "σ = [" + ", ".join(f"{x:.2e}" for x in s) + "]" in text
        time.sleep(0.5)
        shots.append(panel.locator("img").first.screenshot(path=ARTIFACTS / f"ch1-noise-{noise:.0e}-tol-{tol:.0e}.png"))
    distinct = len(set(shots))
    assert distinct == len(shots), f"the singular-value figure did not change: {distinct} different images in {len(shots)} screenshots"


def test_lora_calculator(notebook):
    from lora_edu.lora import lora_param_count

    page = notebook("04_lora.ipynb")
    panel = _panel(page, 'widgets.lora_calculator("llama-2-7b"')
    shots = [panel.locator("img").first.screenshot(path=ARTIFACTS / "ch4-calculator-r8.png")]
    for r in (1, 64):
        _type_readout(panel, 0, str(r))
        c = lora_param_count("llama-2-7b", r, ["q_proj", "v_proj"])
        text = _readout_after(panel, rf"r = {r}, on")
        assert f"{c.trainable:,} trainable parameters of {c.total:,} = {c.share:.3%}" in text
        time.sleep(0.5)
        shots.append(panel.locator("img").first.screenshot(path=ARTIFACTS / f"ch4-calculator-r{r}.png"))
    panel.get_by_role("checkbox", name="k_proj").check()                # tick a third matrix
    c = lora_param_count("llama-2-7b", 64, ["q_proj", "k_proj", "v_proj"])
    assert f"{c.trainable:,} trainable" in _readout_after(panel, r"k_proj")
    distinct = len(set(shots))
    assert distinct == len(shots), f"the calculator's figure did not change: {distinct} different images in {len(shots)} screenshots"
