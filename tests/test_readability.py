"""The readability check on synthetic figures whose text sizes and positions are known by construction."""
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from spline_utils import plot  # noqa: E402
from spline_utils.plot import readability  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def clean_figure(width=6.0, height=4.0):
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.plot([0, 1, 2], [0, 1, 4], label="a curve")
    ax.set(title="a clean figure", xlabel="x", ylabel="y")
    ax.legend()
    return fig, ax


def test_a_clean_figure_passes():
    fig, _ = clean_figure()
    assert readability.check_figure(fig) == []


def test_tiny_font_fails_and_the_threshold_is_in_shown_pixels():
    fig, ax = clean_figure()
    ax.text(0.5, 1.0, "tiny", fontsize=5)  # 5 pt at 100 dpi: 6.9 px, the figure (about 600 px) is not scaled
    problems = readability.check_figure(fig)
    assert len(problems) == 1 and "'tiny'" in problems[0] and "6.9 px" in problems[0]
    ax.texts[0].set_fontsize(6)  # 8.3 px
    assert readability.check_figure(fig) == []


def test_a_wide_figure_is_scaled_down_to_the_column():
    fig, _ = clean_figure(width=24.0)  # 10 pt text = 13.9 px, shown at about 800 / 2230 of its size: about 5 px
    problems = readability.check_figure(fig)
    assert any("'a clean figure'" in p or "'a curve'" in p for p in problems)
    assert readability.check_figure(fig, column_px=3000) == []
    assert readability.check_figure(fig, dpi=30, column_px=3000)  # a low-resolution PNG shows text small


def test_on_a_phone_a_figure_reads_in_the_column_or_enlarged():
    fig, _ = clean_figure(width=3.8, height=3.0)  # 380 px: 10 pt text at 13.9 px, the axes about 300 x 230 px
    assert readability.check_figure_on_phone(fig) == []
    wide, _ = clean_figure(width=13.0)  # 1300 px: shrunk to 390 / 1300 in the column, 10 pt text at about 4 px
    assert readability.check_figure(wide, column_px=readability.PHONE_COLUMN_PX,
                                    min_text_px=readability.PHONE_MIN_TEXT_PX), "too small in the 390 px column"
    assert readability.check_figure_on_phone(wide) == [], "the enlarged view shows it at its drawn size"
    tiny, ax = clean_figure(width=13.0)
    ax.text(0.5, 1.0, "footnote", fontsize=4)  # 5.6 px even enlarged
    problems = readability.check_figure_on_phone(tiny)
    assert problems and all(problem.startswith("enlarged: ") for problem in problems)
    assert any("'footnote'" in problem and "below 6 px" in problem for problem in problems)


def test_on_a_phone_every_panel_is_at_least_120_px():
    fig, axes = plt.subplots(1, 2, figsize=(3.8, 1.4), dpi=100)  # two panels about 108 px high in the column
    for ax in axes:
        ax.plot([0, 1], [0, 1])
    assert readability.check_figure(fig) == [], "100 px is enough in the 800 px column"
    problems = readability.check_figure_on_phone(fig)
    assert problems and all("below 120 px" in problem for problem in problems)


def test_overlapping_labels_fail():
    fig, ax = clean_figure()
    ax.text(1.0, 2.0, "first label")
    ax.text(1.05, 2.05, "second label")
    problems = readability.check_figure(fig)
    assert problems == ["texts overlap: 'first label' and 'second label'"]
    ax.texts[1].set_position((1.0, 3.0))  # one line higher: 1 data unit is about 60 px here
    assert readability.check_figure(fig) == []


def test_colliding_tick_labels_name_their_axis():
    fig, ax = clean_figure()
    ax.set_xticks([1.0, 1.02], ["1,000,000", "2,000,000"])
    (problem,) = readability.check_figure(fig)
    assert problem.startswith("tick labels collide on the x axis of 'a clean figure'")


def test_text_clipped_away_is_not_drawn_and_not_checked():
    fig, ax = clean_figure()
    ax.text(50.0, 50.0, "far outside", fontsize=3, clip_on=True)  # outside the axes: clipped, never seen
    assert readability.check_figure(fig) == []


def test_small_axes_fail_but_a_colorbar_only_needs_length():
    fig, ax = clean_figure()
    inset = ax.inset_axes([0.05, 0.6, 0.1, 0.1])  # about 50 x 30 px
    inset.plot([0, 1], [1, 0])
    inset.set(xticks=[], yticks=[])
    (problem,) = readability.check_figure(fig)
    assert problem.startswith("axes at") and "below 100 px" in problem
    inset.remove()
    image = ax.imshow([[0, 1], [1, 0]], extent=(0, 2, 0, 4))
    fig.colorbar(image, ax=ax)  # a narrow but tall colorbar
    assert readability.check_figure(fig) == []


def test_the_check_leaves_the_figure_on_its_canvas():
    fig, _ = clean_figure()
    canvas = fig.canvas
    readability.check_figure(fig)
    assert fig.canvas is canvas


def test_bad_arguments_are_rejected():
    fig, _ = clean_figure()
    with pytest.raises(ValueError, match="column_px"):
        readability.check_figure(fig, column_px=0)
    with pytest.raises(ValueError, match="dpi"):
        readability.check_figure(fig, dpi=-1)


def test_figure_png_records_frames_at_their_resolution(tmp_path, monkeypatch):
    report = tmp_path / "report.jsonl"
    monkeypatch.setenv(readability.REPORT_VARIABLE, str(report))
    plot.figure_png(clean_figure()[0], dpi=100)
    plot.figure_png(clean_figure()[0], dpi=40)  # 10 pt at 40 dpi: 5.6 px
    entries = readability.read_report(report)
    assert [e["source"] for e in entries] == ["slider frame"] * 2
    assert entries[0]["problems"] == [] and entries[1]["problems"]
    assert entries[0]["figure"] == "a clean figure"
    text = readability.format_report(entries + entries)  # two frames with the same problems: one paragraph
    assert text.count("slider frame") == 1 and "(2 frames)" in text and "5.6 px" in text


def test_nothing_is_recorded_without_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(readability.REPORT_VARIABLE, raising=False)
    readability.record_figure(clean_figure()[0], "cell 1")
    assert readability.read_report(tmp_path / "missing.jsonl") == []


def test_the_backend_checks_every_figure_however_it_is_closed(tmp_path):
    """plt.close (as after glue), plt.show and the end of a cell all record the figure; a fresh interpreter, because
    a backend is chosen once per process."""
    report = tmp_path / "report.jsonl"
    script = (
        "import matplotlib.pyplot as plt\n"
        "from spline_utils.plot import readability_backend\n"
        "fig, ax = plt.subplots(); ax.text(0.5, 0.5, 'closed', fontsize=4); plt.close(fig)\n"
        "fig, ax = plt.subplots(); ax.set_title('shown'); plt.show()\n"
        "fig, ax = plt.subplots(); ax.set_title('left open')\n"
        "readability_backend.check_open_figures()\n"
        "assert plt.get_fignums() == []\n")
    environment = dict(os.environ, MPLBACKEND="module://spline_utils.plot.readability_backend",
                       **{readability.REPORT_VARIABLE: str(report)})
    subprocess.run([sys.executable, "-c", script], env=environment, check=True)
    entries = [json.loads(line) for line in report.read_text().splitlines()]
    assert [e["figure"] for e in entries][1:] == ["shown", "left open"]
    assert [bool(e["problems"]) for e in entries] == [True, False, False]
