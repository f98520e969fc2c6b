"""Every chapter runs the way a reader meets it in Colab: its install cell really installs ``spline_utils``.

Colab opens a chapter from the repository (the badge) in an empty folder, with torch, numpy, matplotlib, ipywidgets
and the rest preinstalled but not ``spline_utils``, and ``"google.colab" in sys.modules``. Here:

* the public host is stood in for by a git repository holding a snapshot of this working tree (tracked and untracked,
  not ignored, files), at the ref ``_config.yml`` names, as a branch or tag like the real one; a ref that this
  repository lacks is missing there too, so a badge or install cell naming a nonexistent ref fails here as in Colab;
* the preinstalled packages are this environment's, seen through a folder of links that leaves out ``spline_utils``,
  added to a fresh virtualenv by a ``.pth`` file (pip sees them as installed, outside the environment, so it can
  neither download another torch without it showing nor uninstall anything);
* the chapter (``SMOKE = True``) runs through papermill in that virtualenv from an empty folder; its install cell is
  executed as committed, with only the host part of its URL pointed at the stand-in.

The install may add ``spline_utils`` and nothing else: a package pip installs next to a preinstalled one (a newer
numpy, a CUDA torch) fails the test.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
URL, REF = CONFIG["repository"]["url"].rstrip("/"), str(CONFIG["repository"]["branch"])
FAKE_COLAB = 'import sys, types\nsys.modules["google.colab"] = types.ModuleType("google.colab")\n'

pytestmark = [pytest.mark.colab, pytest.mark.network]


def git(*args, cwd=ROOT, check=True):
    return subprocess.run(["git", "-c", "user.name=colab-test", "-c", "user.email=colab-test@example.invalid",
                           "-c", "init.defaultBranch=snapshot", "-c", "commit.gpgsign=false", *args],
                          cwd=cwd, capture_output=True, text=True, check=check)


def kind_of_ref(ref):
    """``"branch"`` or ``"tag"`` where this repository has ``ref``, else ``None``."""
    for kind, names in (("branch", [f"refs/heads/{ref}", f"refs/remotes/origin/{ref}"]), ("tag", [f"refs/tags/{ref}"])):
        if any(git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False).returncode == 0
               for name in names):
            return kind
    return None


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A git repository standing in for ``repository.url``: this working tree's files, at the ref if it exists."""
    if git("rev-parse", "--is-inside-work-tree", check=False).stdout.strip() != "true":
        pytest.skip("not a git checkout: the stand-in repository is made from git's list of files")
    stand_in = tmp_path_factory.mktemp("host") / Path(URL).name
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z").stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (stand_in / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, stand_in / name)
    git("init", "-q", cwd=stand_in)
    git("add", "-A", cwd=stand_in)
    git("commit", "-q", "-m", "snapshot of the working tree", cwd=stand_in)
    kind = kind_of_ref(REF)
    if kind == "branch" and REF != "snapshot":
        git("branch", REF, cwd=stand_in)
    elif kind == "tag":
        git("tag", REF, cwd=stand_in)
    return stand_in


@pytest.fixture(scope="module")
def preinstalled(tmp_path_factory):
    """This environment's packages without ``spline_utils``: a folder of links to everything else."""
    folder = tmp_path_factory.mktemp("preinstalled")
    site_packages = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    for site in site_packages:
        for entry in site.iterdir():
            name = entry.name.lower()
            if "spline_utils" in name or name.startswith("__editable__") or entry.suffix == ".pth":
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def colab_like_venv(folder, preinstalled):
    """A virtualenv whose interpreter sees ``preinstalled`` after its own site-packages, and a kernel spec for it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")
    kernel = folder / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab stand-in)", "language": "python"}))
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-google-colab.py").write_text(FAKE_COLAB)
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND", "SPLINE_BOOK_STATIC", "PYTHONHOME"}
           and not key.startswith(("JUPYTER", "IPYTHON", "SPLINE_BOOK_READABILITY"))}
    env.update(PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}", JUPYTER_DATA_DIR=str(folder / "jupyter"),
               IPYTHONDIR=str(folder / "ipython"), PIP_REPORT=str(folder / "pip-report.json"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return python, site, env


def pointed_at(notebook, host):
    """The chapter as committed, its install cell's URL pointed at the stand-in (host part only)."""
    content = json.loads(notebook.read_text())
    install = content["cells"][1]
    text = "".join(install["source"])
    assert f"git+{URL}@" in text, f"{notebook.name}: the second cell does not install from {URL}"
    install["source"] = text.replace(f"git+{URL}@", f"git+file://{host}@")
    return content


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_in_colab_from_an_empty_folder(notebook, host, preinstalled, tmp_path):
    python, site, env = colab_like_venv(tmp_path, preinstalled)
    absent = subprocess.run([str(python), "-c", "import spline_utils"], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert absent.returncode != 0, "spline_utils is importable before the install cell: the test would prove nothing"
    before = {entry.name for entry in site.iterdir()}
    (tmp_path / "notebook.ipynb").write_text(json.dumps(pointed_at(notebook, host)))
    content = tmp_path / "content"  # Colab's working folder: empty
    content.mkdir()
    started = time.perf_counter()
    run = subprocess.run([str(python), "-m", "papermill", str(tmp_path / "notebook.ipynb"), str(tmp_path / "out.ipynb"),
                          "-p", "SMOKE", "True", "--cwd", str(content), "-k", "python3", "--no-progress-bar"],
                         capture_output=True, text=True, env=env, cwd=content)
    seconds = time.perf_counter() - started
    install_seconds = float("nan")
    if (tmp_path / "out.ipynb").exists():
        cell = json.loads((tmp_path / "out.ipynb").read_text())["cells"][1]
        install_seconds = cell["metadata"].get("papermill", {}).get("duration") or float("nan")
    print(f"{notebook.stem}: {seconds:.1f} s in the Colab stand-in, {install_seconds:.1f} s of it the install cell")
    assert run.returncode == 0, f"{notebook.name} fails in Colab ({seconds:.0f} s):\n{run.stderr[-4000:]}"
    added = sorted({entry.name for entry in site.iterdir()} - before)
    foreign = [name for name in added if not re.match(r"(spline_utils|__editable__)", name, re.IGNORECASE)
               and name != "__pycache__"]
    assert any(name.startswith("spline_utils") for name in added), f"the install cell installed nothing: {added}"
    assert not foreign, f"the install cell installed next to Colab's packages: {foreign}"
    report = json.loads((tmp_path / "pip-report.json").read_text())
    installed = [(item["metadata"]["name"], item["metadata"]["version"]) for item in report["install"]]
    assert [name for name, _ in installed] == ["spline_utils"], f"pip installed {installed}"
    assert report["install"][0]["download_info"]["url"] == f"file://{host}", "installed from another place"
    assert not content.joinpath("spline_utils").exists(), "the chapter must not rely on files in its folder"
