"""The playground page (book/playground.md) in a real browser, checked against the package.

The page computes partitions, trains and prunes with its own script (book/_static/playground.js); these tests drive it
through its test API ``window.playground`` and compare with the trusted Python side:

* region counts, the set of activation codes, every unit's spline and the decision boundary equal those of
  ``spline_utils.partition2d`` on the same weights and bounds, for random networks of 1-3 hidden layers, widths 2-16
  and several seeds and domains, and for networks trained in Python;
* a training step (plain SGD, SGD with momentum, Adam) moves the weights as the same PyTorch optimizer does, and
  training in the page lowers the loss on the X task from the book's seed;
* pruning a unit removes exactly its spline (the codes lose that column; the pruned network of
  ``pruning.prune_nodes`` has the same partition); the pruning rules pick the package's units;
* the early-bird distance and its probe codes are those of ``spline_utils.early_bird.codes`` and ``activation_codes``;
* at 390 and 1400 px the page has no console error or warning, requests nothing from another host, does not scroll
  sideways, and can be used by touch and keyboard. Screenshots go to ``_build/screenshots/playground-*.png``.

Needs a built book (``tools/build_book.py --only playground`` is enough) and Chromium; skips without them, fails
with ``SPLINE_BOOK_REQUIRE_BROWSER=1`` (``make browser-check``).
"""
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
from browser_support import recording_page, unavailable
from data_files import local_server
from spline_utils import data, pruning
from spline_utils.early_bird import codes
from spline_utils.pruning import spline_criterion as spline_pruning
from spline_utils.training import nets, train
from spline_utils.engine.slices import grid_points

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SPLINE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = HTML_DIR.parent / "screenshots"
PAGE = "book/playground.html"
PHONE, DESKTOP = 390, 1400

# (hidden widths, seed, bounds, N(0, 1) weights instead of PyTorch's default initialization)
RANDOM_NETWORKS = [
    ((2,), 0, (-1.0, 1.0, -1.0, 1.0), False),
    ((5,), 1, (-2.0, 2.0, -2.0, 2.0), False),
    ((16,), 2, (-3.0, 3.0, -2.0, 2.0), True),
    ((3, 7), 3, (-2.0, 2.0, -2.0, 2.0), False),
    ((8, 8), 4, (0.5, 2.5, -1.0, 1.0), False),
    ((16, 16), 5, (-2.0, 2.0, -2.0, 2.0), False),
    ((16, 16), 6, (-2.0, 2.0, -2.0, 2.0), True),
    ((4, 4, 4), 7, (-1.0, 1.0, -1.0, 1.0), False),
    ((6, 10, 2), 8, (-5.0, 5.0, -5.0, 5.0), True),
    ((16, 16, 16), 9, (-1.0, 1.0, -1.0, 1.0), False),
    ((12, 12, 12), 10, (-2.0, 2.0, -2.0, 2.0), True),
]


@pytest.fixture(scope="module")
def site():
    """Base URL of ``HTML_DIR`` served on 127.0.0.1."""
    if not (HTML_DIR / PAGE).exists():
        unavailable(f"no {PAGE} in {HTML_DIR}: build the book first (`python tools/build_book.py --only playground`)")
    with local_server(HTML_DIR, 1800) as (base_url, _):
        yield base_url.rstrip("/")


def open_playground(browser, site, width, touch=False):
    """A fresh page ``width`` px wide on the playground; ``page.problems`` collects script errors, console errors
    and warnings, and requests to another host (aborted)."""
    page = recording_page(browser, width, touch)
    page.goto(f"{site}/{PAGE}", wait_until="load")
    page.wait_for_function("() => window.playground !== undefined", timeout=10_000)
    return page


@pytest.fixture(scope="module")
def playground(browser, site):
    """One desktop page shared by the comparison tests (each sets its own weights)."""
    page = open_playground(browser, site, DESKTOP)
    yield page
    assert not page.problems, page.problems
    page.context.close()


def spec(model: nn.Sequential, bounds=None, keep=None) -> dict:
    """The test API's description of a 2-...-2 Linear/ReLU network: weights (fan_out x fan_in) and biases."""
    linears = [module for module in model if isinstance(module, nn.Linear)]
    out = {"weights": [layer.weight.detach().double().tolist() for layer in linears],
           "biases": [layer.bias.detach().double().tolist() for layer in linears]}
    if bounds is not None:
        out["bounds"] = list(bounds)
    if keep is not None:
        out["keep"] = keep
    return out


def code_strings(codes_array: np.ndarray) -> list[str]:
    return sorted("".join("1" if bit else "0" for bit in row) for row in np.asarray(codes_array, dtype=bool))


def same_segments(ours, theirs, tolerance=1e-7) -> bool:
    """Two sets of segments (n, 2, 2) are equal up to ``tolerance`` (order of the segments ignored)."""
    ours, theirs = np.asarray(ours, dtype=float).reshape(-1, 4), np.asarray(theirs, dtype=float).reshape(-1, 4)
    if ours.shape != theirs.shape:
        return False
    key = lambda segments: segments[np.lexsort(np.round(segments, 6).T[::-1])]  # noqa: E731
    return bool(np.allclose(key(ours), key(theirs), atol=tolerance, rtol=0))


def check_against_package(playground, model, bounds, name):
    """The page's partition of ``model`` on ``bounds`` equals ``partition2d``'s: counts, codes, splines, boundary."""
    state = playground.evaluate("spec => { playground.setWeights(spec); return playground.state(); }",
                                spec(model, bounds))
    part = su.partition2d(model, bounds)
    assert state["error"] is None, f"{name}: {state['error']}"
    assert state["regions"] == part.num_regions, f"{name}: {state['regions']} regions, package {part.num_regions}"
    assert state["regionsPerLayer"] == [layer.num_regions for layer in part.layers], name
    assert state["codes"] == code_strings(part.codes), f"{name}: the codes differ"
    for layer in range(len(part.layers)):
        page_splines = playground.evaluate("layer => playground.splines(layer)", layer)
        for node, segments in enumerate(page_splines):
            assert same_segments(segments, part.spline_segments(layer, node)), \
                f"{name}: layer {layer} node {node}: {len(segments)} segments, package " \
                f"{len(part.spline_segments(layer, node))}"
    assert same_segments(playground.evaluate("() => playground.boundary()"), part.boundary_segments()), \
        f"{name}: the decision boundary differs"
    return state


@pytest.mark.parametrize("hidden, seed, bounds, normal", RANDOM_NETWORKS,
                         ids=[f"{'-'.join(map(str, h))}-seed{s}{'-normal' if n else ''}"
                              for h, s, _, n in RANDOM_NETWORKS])
def test_random_network_partition_equals_the_package(playground, hidden, seed, bounds, normal):
    model = nets.mlp((2, *hidden, 2), seed=seed)
    if normal:
        nets.normal_init_(model, std=1.0, seed=seed)
    state = check_against_package(playground, model, bounds, f"2-{'-'.join(map(str, hidden))}-2 seed {seed}")
    assert state["regions"] > 1


@pytest.fixture(scope="module")
def trained():
    """Networks trained in Python (seeded), with their domains: the chapters' tasks (one thread: these are tiny)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x_square, y_square = data.square_task(600, seed=0)
    x_x, y_x = data.x_task(600, seed=0)
    x_disk, y_disk = data.disk_task(600, seed=0)
    models = {}
    for name, widths, (x, y), bounds, epochs in [
            ("square 2-8-8-2", (2, 8, 8, 2), (x_square, y_square), (-2.0, 2.0, -2.0, 2.0), 40),
            ("x 2-16-2", (2, 16, 2), (x_x, y_x), (-5.0, 5.0, -5.0, 5.0), 40),
            ("disk 2-5-8-2", (2, 5, 8, 2), (x_disk, y_disk), (-3.0, 3.0, -3.0, 3.0), 40),
            ("square 2-10-10-10-2", (2, 10, 10, 10, 2), (x_square, y_square), (-2.0, 2.0, -2.0, 2.0), 30)]:
        model = nets.mlp(widths, seed=1)
        train.fit(model, x, y, epochs=epochs, lr=0.05, momentum=0.9, batch_size=64, seed=0)
        models[name] = (model, bounds)
    torch.set_num_threads(threads)
    return models


@pytest.mark.parametrize("name", ["square 2-8-8-2", "x 2-16-2", "disk 2-5-8-2", "square 2-10-10-10-2"])
def test_trained_network_partition_equals_the_package(playground, trained, name):
    model, bounds = trained[name]
    check_against_package(playground, model, bounds, name)


def test_pruning_a_unit_removes_exactly_its_spline(playground, trained):
    model, bounds = trained["square 2-8-8-2"]
    playground.evaluate("spec => playground.setWeights(spec)", spec(model, bounds))
    before = [playground.evaluate("layer => playground.splines(layer)", layer) for layer in (0, 1)]
    for layer, unit in [(0, 3), (1, 5)]:
        assert len(before[layer][unit]) > 0, "pick a unit whose spline crosses the domain"
    assert playground.evaluate("() => playground.prune(0, 3)")
    assert playground.evaluate("() => playground.prune(1, 5)")
    state = playground.evaluate("() => playground.state()")
    masks = [torch.ones(8, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    masks[0][3] = masks[1][5] = False
    pruned = pruning.prune_nodes(model, masks)
    part = su.partition2d(pruned, bounds)
    columns = [3, 8 + 5]
    assert all(code[column] == "0" for code in state["codes"] for column in columns), "a pruned unit is never active"
    dropped = sorted("".join(c for index, c in enumerate(code) if index not in columns) for code in state["codes"])
    assert state["regions"] == part.num_regions
    assert dropped == code_strings(part.codes), "the codes without the pruned columns are not the pruned network's"
    after = [playground.evaluate("layer => playground.splines(layer)", layer) for layer in (0, 1)]
    assert after[0][3] == [] and after[1][5] == [], "a pruned unit's spline is still drawn"
    for layer, unit in [(0, 3), (1, 5)]:
        survivors = [node for node in range(8) if node != unit]
        for index, node in enumerate(survivors):
            assert same_segments(after[layer][node], part.spline_segments(layer, index)), (layer, node)
    # The first layer's other splines do not move; the second layer's bend on one line fewer.
    assert all(same_segments(after[0][node], before[0][node]) for node in range(8) if node != 3)
    assert playground.evaluate("() => playground.prune(0, 3, false)"), "a pruned unit can be restored"
    assert same_segments(playground.evaluate("() => playground.splines(0)")[3], before[0][3])


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_pruning_rules_pick_the_package_units(playground, trained, ratio):
    model, bounds = trained["disk 2-5-8-2"]
    playground.evaluate("spec => playground.setWeights(spec)", spec(model, bounds))
    magnitude = playground.evaluate("ratio => playground.pruneBy('magnitude', ratio)", ratio)
    expected = pruning.select_nodes(pruning.node_scores(model, "magnitude"), ratio)
    assert magnitude == [mask.int().tolist() for mask in expected]
    spline = playground.evaluate("ratio => playground.pruneBy('spline', ratio)", ratio)
    expected = spline_pruning.spline_keep_masks(spline_pruning.spline_distances(model, "parameter"), ratio)
    assert spline == [mask.int().tolist() for mask in expected]
    state = playground.evaluate("() => playground.state()")
    part = su.partition2d(pruning.prune_nodes(model, [mask.bool() for mask in expected]), bounds)
    assert state["regions"] == part.num_regions


def torch_steps(model, x, y, kind, lr, steps):
    """``steps`` full-batch steps of the PyTorch optimizer in float64 (the page's arithmetic)."""
    model = copy.deepcopy(model).double()
    optimizer = {"sgd": lambda p: torch.optim.SGD(p, lr=lr), "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
                 "adam": lambda p: torch.optim.Adam(p, lr=lr)}[kind](model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x.double()), y).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("kind, lr", [("sgd", 0.1), ("momentum", 0.05), ("adam", 0.01)])
def test_a_training_step_is_pytorchs(playground, kind, lr):
    model = nets.mlp((2, 8, 8, 2), seed=0)
    x, y = data.x_task(200, seed=0)
    playground.evaluate("spec => playground.setWeights(spec)", spec(model, (-5.0, 5.0, -5.0, 5.0)))
    playground.evaluate("([x, y]) => playground.setData(x, y)", [x.double().tolist(), y.tolist()])
    before = playground.evaluate("() => playground.loss()")
    with torch.no_grad():
        assert before == pytest.approx(float(nn.functional.cross_entropy(model.double()(x.double()), y)), rel=1e-12)
    playground.evaluate("([kind, lr]) => playground.setOptimizer(kind, lr)", [kind, lr])
    playground.evaluate("() => playground.train(3, true)")
    weights = playground.evaluate("() => playground.getWeights()")
    reference = [module for module in torch_steps(nets.mlp((2, 8, 8, 2), seed=0), x, y, kind, lr, 3)
                 if isinstance(module, nn.Linear)]
    for layer, module in enumerate(reference):
        np.testing.assert_allclose(weights["weights"][layer], module.weight.detach().numpy(), atol=1e-12, rtol=1e-9)
        np.testing.assert_allclose(weights["biases"][layer], module.bias.detach().numpy(), atol=1e-12, rtol=1e-9)


def test_training_in_the_page_lowers_the_loss_on_the_x_task(browser, site):
    """The page as a reader opens it, on the X task from the book's seed (0): training lowers the loss."""
    page = open_playground(browser, site, DESKTOP)
    page.select_option("#pg-task", "x")
    page.fill("#pg-seed", "0")
    page.locator("#pg-seed").dispatch_event("change")
    start = page.evaluate("() => playground.state()")
    assert start["steps"] == 0 and start["bounds"] == [-5, 5, -5, 5]
    loss = page.evaluate("() => playground.train(300)")
    state = page.evaluate("() => playground.state()")
    print(f"X task, seed 0: loss {start['loss']:.4f} -> {loss:.4f}, accuracy {start['accuracy']:.3f} -> "
          f"{state['accuracy']:.3f}, {state['regions']} regions")
    assert loss < 0.5 * start["loss"] and state["accuracy"] > start["accuracy"]
    assert not page.problems, page.problems
    page.context.close()


def test_code_change_is_the_early_bird_distance(playground, trained):
    model, bounds = trained["disk 2-5-8-2"]
    playground.evaluate("spec => playground.setWeights(spec)", spec(model, bounds))
    x, y = data.disk_task(200, seed=1)
    playground.evaluate("([x, y]) => playground.setData(x, y)", [x.double().tolist(), y.tolist()])
    playground.evaluate("() => playground.prune(1, 2)")
    playground.evaluate("() => playground.train(12)")
    history = playground.evaluate("() => playground.history()")
    state = playground.evaluate("() => playground.state()")
    packed = [codes.PackedCodes.from_bool([np.array([[c == "1" for c in code] for code in layer])
                                           for layer in entry["codes"]]) for entry in (history[0], history[10])]
    assert state["hamming"] == pytest.approx(codes.network_distance(*packed), abs=1e-12)
    probe = playground.evaluate("() => playground.probe()")
    np.testing.assert_allclose(probe["points"], grid_points(bounds, 32)[2], rtol=0, atol=1e-15)
    weights = playground.evaluate("() => playground.getWeights()")
    current = nets.mlp((2, 5, 8, 2))
    with torch.no_grad():
        for layer, module in enumerate(module for module in current if isinstance(module, nn.Linear)):
            module.weight.copy_(torch.tensor(weights["weights"][layer]))
            module.bias.copy_(torch.tensor(weights["biases"][layer]))
    kept = pruning.prune_nodes(current, [torch.tensor(mask, dtype=torch.bool) for mask in weights["keep"]])
    expected = codes.probe_codes(kept.double(), torch.tensor(probe["points"]))
    ours = codes.PackedCodes.from_bool([np.array([[c == "1" for c in code] for code in layer])
                                        for layer in probe["codes"]])
    assert codes.network_distance(ours, expected) == 0.0


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_page_is_clean_and_usable(browser, site, width):
    """Touch (390 px) or mouse (1400 px) and keyboard: play, pause, step, prune a unit, read a region, add a point."""
    page = open_playground(browser, site, width, touch=width == PHONE)
    page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    layout = page.evaluate("""() => ({width: document.documentElement.scrollWidth,
        canvas: document.querySelector('#playground canvas').getBoundingClientRect().width,
        controls: [...document.querySelectorAll('#playground button, #playground select, #playground input')]
            .filter((e) => e.offsetParent !== null)
            .map((e) => ({small: e.type === 'radio' || e.type === 'checkbox', right: e.getBoundingClientRect().right,
                          height: e.getBoundingClientRect().height, label: e.labels && e.labels.length > 0
                          || !!e.getAttribute('aria-label') || e.tagName === 'BUTTON'}))})""")
    assert layout["width"] <= width, f"the page is {layout['width']} px wide at {width} px"
    assert layout["canvas"] >= min(300, width - 60), f"the picture is only {layout['canvas']} px wide"
    assert all(control["right"] <= width for control in layout["controls"]), "a control is past the screen's edge"
    assert all(control["label"] for control in layout["controls"]), "a control has no label"
    if width == PHONE:
        assert min(control["height"] for control in layout["controls"] if not control["small"]) >= 30, \
            "a control is too small for a finger"
    press = (lambda locator: locator.tap()) if width == PHONE else (lambda locator: locator.click())
    press(page.locator("#pg-play"))
    page.wait_for_function("() => playground.state().steps >= 20", timeout=20_000)
    press(page.locator("#pg-play"))
    assert page.locator("#pg-play").get_attribute("aria-pressed") == "false"
    paused = page.evaluate("() => playground.state().steps")
    page.wait_for_timeout(300)
    assert page.evaluate("() => playground.state().steps") == paused, "training went on after Pause"
    press(page.locator("#pg-step"))
    assert page.evaluate("() => playground.state().steps") == paused + 1
    assert page.locator("#pg-steps").inner_text() == str(paused + 1)
    # prune a unit with a press, and one with the keyboard
    unit = page.locator("button.pg-unit").nth(1)
    press(unit)
    assert unit.get_attribute("aria-pressed") == "true"
    assert page.evaluate("() => playground.state().keep[0][1]") == 0
    assert page.evaluate("() => playground.splines(0)[1].length") == 0
    page.locator("button.pg-unit").nth(2).focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => playground.state().keep[0][2]") == 0
    # read a region by a tap and by the keyboard
    canvas = page.locator("#playground canvas")
    press(canvas)
    assert "Activation code" in page.locator("#pg-info").inner_text()
    canvas.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert "Activation code" in page.locator("#pg-info").inner_text()
    # add a point of class 1 with a tap
    points = page.evaluate("() => playground.state().points")
    press(page.locator("input[name=pg-mode][value=add1]"))
    assert page.locator("input[name=pg-mode][value=add1]").is_checked()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    if width == PHONE:
        page.touchscreen.tap(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    else:
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    assert page.evaluate("() => playground.state().points") == points + 1
    # the pruning slider by keyboard
    page.locator("#pg-ratio").focus()
    page.keyboard.press("ArrowRight")
    assert page.locator("#pg-ratio-value").inner_text() == "10 %"
    press(page.locator("#pg-retrain"))
    page.wait_for_function("() => playground.state().steps > 25", timeout=20_000)
    press(page.locator("#pg-play"))
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.activeElement.blur()")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"playground-{width}.png"))
    page.locator("#pg-units").evaluate("element => element.scrollIntoView({block: 'end', behavior: 'instant'})")
    page.wait_for_timeout(200)
    page.screenshot(path=str(SCREENSHOTS / f"playground-{width}-prune.png"))
    assert not page.problems, page.problems
    page.context.close()
