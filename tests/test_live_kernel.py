"""Live kernels are tested, not assumed: a real JupyterLab server, the project's kernel, a real browser.

A JupyterLab server starts on 127.0.0.1 (a free port, a random token, no browser; its config, data, settings and
runtime folders in a temporary directory) with this Python, the project's ``.venv``, so the kernel is the project's
ipykernel. Headless Chromium (the Debian package driven by Playwright; never ``playwright install``) opens a copy of
chapter 1 with ``SMOKE = True`` and one cell appended, runs every cell as a reader would (Run All) in one kernel, and
drags each ipywidgets slider with the mouse:

* the chapter's ``frame_slider``: another picture and label appear;
* the appended ``interact.live_control``: every move re-trains a 2-D MLP of the chosen width in the kernel and
  redraws its exact partition; the kernel's own log says what it computed, and with which Python.

Screenshots go to ``_build/screenshots/live_kernel_*.png``. Without Chromium, Playwright or JupyterLab the tests skip
with what to do; with ``SPLINE_BOOK_REQUIRE_BROWSER=1`` (``make browser-check``, CI) they fail instead. Every wait is
bounded and the server is always shut down, its kernels with it.
"""
import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser_support import unavailable

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "01_spline_partition.ipynb"
SCREENSHOTS = ROOT / "_build" / "screenshots"
SERVER_START_SECONDS = 90
RUN_ALL_SECONDS = 240
REDRAW_SECONDS = 60
# JupyterLab settings for a reproducible page: every cell in the DOM (no virtual scrolling), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
RETRAIN_WIDTHS = [1, 2, 4, 8, 16]
NOTEBOOK = "live_kernel_check.ipynb"
RETRAIN_LOG = "computed.jsonl"
RETRAIN_CELL = f"""\
# Appended by tests/test_live_kernel.py: a live control that re-trains on every move.
import json
import sys

import matplotlib.pyplot as plt

from spline_utils import data, partition2d, plot
from spline_utils.training import nets, train
from spline_utils.pages.interact import live_control

x_live, y_live = data.x_task(400, seed=0)


def retrain(width):
    model = nets.mlp((2, width, 2), seed=0)
    train.fit(model, x_live, y_live, epochs=5, lr=0.05, momentum=0.9, batch_size=64, seed=0)
    partition = partition2d(model, (-5.0, 5.0, -5.0, 5.0))
    with open("{RETRAIN_LOG}", "a") as log:
        log.write(json.dumps({{"width": width, "regions": partition.num_regions, "python": sys.executable}}) + "\\n")
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    plot.setup_axes(ax, partition.bounds, f"{{width}} hidden units: {{partition.num_regions}} regions")
    plot.draw_regions(ax, partition.polygons)
    plot.draw_layer_splines(ax, partition, 0)
    plot.draw_boundary(ax, partition)
    return fig


live_control(retrain, {RETRAIN_WIDTHS}, "hidden units", start=0, dpi=60)
"""

# The open notebook's progress under Run All: code cells done, errors in outputs, kernel status.
PROGRESS_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget, cells = panel.content.model.cells;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const progress = {done: 0, total: 0, errors: [], status: kernel ? kernel.status : "none"};
    for (let index = 0; index < cells.length; index++) {
        const cell = cells.get(index);
        if (cell.type !== "code") continue;
        progress.total++;
        if (cell.executionCount !== null) progress.done++;
        for (const output of cell.outputs.toJSON())
            if (output.output_type === "error") progress.errors.push(`${output.ename}: ${output.evalue}`);
    }
    return progress;
}"""
# The bytes of an ipywidgets Image (a blob: URL), base64-encoded.
IMAGE_BYTES_JS = """async (image) => {
    const bytes = new Uint8Array(await (await fetch(image.src)).arrayBuffer());
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text);
}"""



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_check_notebook(target: Path) -> None:
    """``CHAPTER`` with ``SMOKE = True``, no outputs and ``RETRAIN_CELL`` appended, written to ``target``."""
    notebook = json.loads(CHAPTER.read_text())
    parameters = [cell for cell in notebook["cells"] if "parameters" in cell["metadata"].get("tags", [])]
    assert len(parameters) == 1, f"{CHAPTER.name} needs one cell tagged 'parameters'"
    source = "".join(parameters[0]["source"])
    smoke = re.sub(r"^SMOKE = False\b", "SMOKE = True", source, flags=re.MULTILINE)
    assert smoke != source, f"{CHAPTER.name}: its parameters cell has no line starting 'SMOKE = False'"
    parameters[0]["source"] = smoke
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["cells"].append({"cell_type": "code", "id": "live-retrain", "metadata": {}, "outputs": [],
                              "execution_count": None, "source": RETRAIN_CELL})
    target.write_text(json.dumps(notebook))



@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """``(base URL, token, notebook folder)`` of a JupyterLab server running this Python's kernel."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        unavailable("jupyterlab is not installed: `make setup` (pip install -r requirements.txt)")
    home = tmp_path_factory.mktemp("jupyter")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    write_check_notebook(notebooks / NOTEBOOK)
    for name, settings in LAB_SETTINGS.items():
        (home / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / name).write_text(json.dumps(settings))
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SPLINE_BOOK_STATIC", "MPLBACKEND")}  # the kernel must be a reader's, not a build's
    environment.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
                       JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
                       JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), IPYTHONDIR=str(home / "ipython"))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"]
            + (["--allow-root"] if os.geteuid() == 0 else []),  # containers and CI run as root
            cwd=notebooks, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_server(server, base, token, log_path)
        yield base, token, notebooks
    finally:
        shut_down(server, base, token)


def wait_for_server(server: subprocess.Popen, base: str, token: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError, ConnectionError and TimeoutError are OSErrors)
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_SECONDS} s:\n{log_path.read_text()[-3000:]}")


def shut_down(server: subprocess.Popen, base: str, token: str) -> None:
    """Ask the server to stop (it shuts its kernels down); signal its process group if it does not."""
    try:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        server.wait(timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        for sent in (signal.SIGTERM, signal.SIGKILL):
            if server.poll() is None:
                os.killpg(server.pid, sent)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


@pytest.fixture(scope="module")
def notebook(browser, jupyter):
    """``(page, notebook folder)``: the check notebook open in JupyterLab after Run All in a live kernel.

    Requests leaving 127.0.0.1 are aborted; uncaught script errors are collected in ``page.script_errors``.
    """
    base, token, folder = jupyter
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("http://127.0.0.1", "data:",
                                                                                          "blob:"))
               else route.abort())
    open_and_run_all(page, base, token)
    yield page, folder
    context.close()


def open_and_run_all(page, base: str, token: str) -> None:
    """Open ``NOTEBOOK`` in JupyterLab, Run All, wait until every code cell ran without an error."""
    started = time.monotonic()
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}", wait_until="load",
              timeout=SERVER_START_SECONDS * 1000)
    page.wait_for_function("""() => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const kernel = panel && panel.sessionContext && panel.sessionContext.session
                       && panel.sessionContext.session.kernel;
        return kernel && kernel.status === "idle" && panel.content.model.cells.length > 0; }""",
                           timeout=SERVER_START_SECONDS * 1000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    progress = page.evaluate(PROGRESS_JS)
    while time.monotonic() - started < SERVER_START_SECONDS + RUN_ALL_SECONDS:
        progress = page.evaluate(PROGRESS_JS)
        assert not progress["errors"], f"a cell failed in the live kernel: {progress['errors']}"
        if progress["done"] == progress["total"] and progress["status"] == "idle":
            return
        time.sleep(0.5)
    pytest.fail(f"Run All did not finish within {RUN_ALL_SECONDS} s ({progress})")


def live_widget(page, description: str):
    """The ipywidgets control named ``description``: (its box, slider track, handle, value label, image)."""
    slider = page.locator(".widget-hslider", has_text=description)
    boxes = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=slider)
    assert boxes.count() == 1, (f"expected one live slider {description!r}, found {boxes.count()}; a static HTML "
                                "slider instead means the kernel was not seen as live")
    box = boxes.first
    box.scroll_into_view_if_needed()
    return (box, box.locator(".noUi-target"), box.locator(".noUi-handle"), box.locator(".widget-hbox > .widget-label"),
            box.locator("img.widget-image"))


def picture(image) -> bytes:
    """The PNG the ipywidgets Image shows now (checked to be a PNG, not blown up beyond its own size)."""
    data = base64.b64decode(image.evaluate(IMAGE_BYTES_JS))
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "the live image is not a PNG"
    shown, natural = image.evaluate("""async image => { try { await image.decode(); } catch (error) {}
        return [image.getBoundingClientRect().width, image.naturalWidth]; }""")
    assert 0 < shown <= natural + 1, f"the live picture is {shown:.0f} px wide for {natural} px: stretched and blurred"
    return data


def drag(page, track, handle, to_right_end: bool) -> None:
    """Drag ``handle`` with the mouse to one end of ``track``, as a reader does."""
    track.evaluate("element => element.scrollIntoView({block: 'center'})")  # not under JupyterLab's menu bar
    track_box, handle_box = track.bounding_box(), handle.bounding_box()
    y = handle_box["y"] + handle_box["height"] / 2
    page.mouse.move(handle_box["x"] + handle_box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track_box["x"] + (track_box["width"] + 20 if to_right_end else -20), y, steps=12)
    page.mouse.up()


def wait_for_redraw(label, image, old_label: str, old_picture: bytes) -> tuple[str, bytes]:
    """The label and picture once both changed and the kernel finished computing."""
    deadline = time.monotonic() + REDRAW_SECONDS
    while time.monotonic() < deadline:
        text = label.inner_text().strip()
        if text != old_label and "computing" not in text:
            shown = picture(image)
            if shown != old_picture:
                return text, shown
        time.sleep(0.25)
    pytest.fail(f"the picture did not change within {REDRAW_SECONDS} s of dragging "
                f"(label still {label.inner_text()!r})")


def screenshot(page, box, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"live_kernel_{name}.png"))


def test_chapter_slider_moves_in_a_live_kernel(notebook):
    page, _ = notebook
    box, track, handle, label, image = live_widget(page, "node")
    before = label.inner_text().strip(), picture(image)
    drag(page, track, handle, to_right_end=True)
    wait_for_redraw(label, image, *before)
    assert handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax"), \
        "dragging to the right end should reach the last position"
    screenshot(page, box, "chapter01")
    assert not page.script_errors, f"script errors in JupyterLab: {page.script_errors}"


def test_live_control_retrains_on_every_move(notebook):
    page, folder = notebook
    box, track, handle, label, image = live_widget(page, "hidden units")
    first = label.inner_text().strip(), picture(image)
    assert first[0] == str(RETRAIN_WIDTHS[0])
    drag(page, track, handle, to_right_end=True)
    widest = wait_for_redraw(label, image, *first)
    assert widest[0] == str(RETRAIN_WIDTHS[-1])
    screenshot(page, box, "retrain")
    drag(page, track, handle, to_right_end=False)
    back = wait_for_redraw(label, image, *widest)
    computed = [json.loads(line) for line in (folder / RETRAIN_LOG).read_text().splitlines()]
    assert [entry["width"] for entry in computed] == [RETRAIN_WIDTHS[0], RETRAIN_WIDTHS[-1], RETRAIN_WIDTHS[0]], \
        "the kernel should re-train once per move, and again when the reader comes back (nothing cached)"
    assert {entry["python"] for entry in computed} == {sys.executable}, "the kernel must be the project's Python"
    one_line, sixteen_lines = computed[0]["regions"], computed[1]["regions"]
    assert one_line <= 2, f"one hidden unit is one line: at most 2 regions, got {one_line}"
    assert 2 < sixteen_lines <= 1 + 16 + 16 * 15 // 2, f"16 lines make 3 to 137 regions, got {sixteen_lines}"
    assert back == first, "the same width re-trained with the same seeds draws the same picture"
    assert not page.script_errors, f"script errors in JupyterLab: {page.script_errors}"
