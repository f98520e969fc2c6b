"""Every chapter runs end to end through papermill with SMOKE=True (seconds), and is committed clean."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# Chapters whose SMOKE run is checked for warnings and "nan" in glued values (issue 21, item 5); add yours once clean.
CLEAN_OUTPUT_CHAPTERS = {"03_early_bird"}


def output_problems(executed: dict) -> list[str]:
    """Warnings in the outputs of an executed notebook, and printed or glued values that read "nan"."""
    problems = []
    for index, cell in enumerate(executed["cells"]):
        for output in cell.get("outputs", []):
            plain = [value for key, value in output.get("data", {}).items() if key.endswith("text/plain")]  # glue too
            text = "".join(output.get("text", "")) + "".join("".join(value) for value in plain)
            if "Warning" in text:
                problems.append(f"cell {index} warns: {text.strip()[:300]}")
            if re.search(r"\bnan\b", text, flags=re.IGNORECASE):
                problems.append(f"cell {index} shows nan: {text.strip()[:300]}")
    return problems


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found in book/"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_committed_without_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    dirty = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{notebook.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_valid_notebook_with_unique_cell_ids(notebook):
    import nbformat

    content = json.loads(notebook.read_text())
    missing = [i for i, cell in enumerate(content["cells"]) if "id" not in cell]
    assert not missing, f"{notebook.name}: cells {missing} have no id (nbformat 4.5); run nbformat.validator.normalize"
    ids = [cell["id"] for cell in content["cells"]]
    assert len(set(ids)) == len(ids), f"{notebook.name}: duplicate cell ids"
    nbformat.validate(content)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_anatomy(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "colab.research.google.com" in "".join(cells[0]["source"])
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    assert "SMOKE = False" in "".join(tagged[0]["source"])
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "What the paper does not say" in text
    assert "frame_slider(" in "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_smoke_run(notebook, tmp_path, monkeypatch):
    """The chapter runs, and every figure it shows (slider frames included) reads at the page's size."""
    import papermill

    from spline_utils.plot import readability

    report = tmp_path / "readability.jsonl"
    monkeypatch.setenv("SPLINE_BOOK_STATIC", "1")
    monkeypatch.setenv("MPLBACKEND", readability.BACKEND)  # the kernel inherits both, checks and closes every figure
    monkeypatch.setenv(readability.REPORT_VARIABLE, str(report))
    executed = papermill.execute_notebook(str(notebook), str(tmp_path / notebook.name), parameters={"SMOKE": True},
                                          cwd=str(ROOT / "book"), kernel_name="python3", progress_bar=False)
    if notebook.stem in CLEAN_OUTPUT_CHAPTERS:
        problems = output_problems(executed)
        assert not problems, f"{notebook.name}: warnings or NaN in the SMOKE run:\n" + "\n".join(problems)
    figures = readability.read_report(report)
    assert figures, f"{notebook.name}: no figure was checked; is the readability backend active in the kernel?"
    problems = readability.format_report(figures)
    assert not problems, f"{notebook.name}: figures unreadable at the page's size:\n{problems}"
