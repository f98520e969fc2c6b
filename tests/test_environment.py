"""requirements.txt, environment.yml and pyproject.toml describe one environment."""
import re
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    result = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {line}"
            result[requirement.name.lower().replace("_", "-")] = specifiers[0].version
    return result


def test_requirements_are_exact_pins_with_the_offline_toolchain():
    pinned = pins()
    assert pinned["torch"] == "2.13.0", "torch 2.13.0 is the CPU wheel that installs offline"
    assert pinned["jupyter-book"].startswith("1."), "Jupyter Book 2 cannot build offline"
    for needed in ("papermill", "numpy", "matplotlib", "scikit-learn", "scipy", "pytest", "hypothesis", "tqdm",
                   "ipywidgets", "playwright"):
        assert needed in pinned, f"{needed} is used but not pinned"


def test_environment_yml_points_at_the_same_pins_and_the_package():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section
    assert "-e ." in pip_section
    python = next(d for d in dependencies if isinstance(d, str) and d.startswith("python"))
    assert re.fullmatch(r"python=(\d+\.\d+)", python).group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"
    conda_packages = [d for d in dependencies if isinstance(d, str) and not d.startswith(("python", "pip"))]
    assert not conda_packages, f"conda packages would bypass the pins: {conda_packages}"


def test_environment_yml_installs_the_cpu_build_of_the_pinned_torch():
    """Binder builds from environment.yml: torch from PyTorch's CPU index, the same version as requirements.txt."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section
    assert f"torch=={pins()['torch']}+cpu" in pip_section, f"environment.yml must pin torch=={pins()['torch']}+cpu"


def test_pinned_jupyter_packages_agree():
    """notebook is pinned with the jupyterlab it was released with (Binder's image would otherwise keep an older
    notebook that requires an older jupyterlab); the installed environment passes `pip check`."""
    import subprocess

    pinned = pins()
    for needed in ("notebook", "jupyterlab", "build", "twine", "setuptools"):
        assert needed in pinned, f"{needed} is not pinned"
    checked = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_package_dependencies_are_satisfied_by_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is a package dependency but not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} violates {requirement}"


def test_every_subpackage_is_installed_by_pyproject():
    """A `pip install` from git (Colab) ships only the packages pyproject.toml names or finds: every folder with an
    __init__.py must be among them."""
    from setuptools import find_packages

    setuptools_table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    if "packages" in setuptools_table and isinstance(setuptools_table["packages"], list):
        listed = set(setuptools_table["packages"])
    else:
        find = setuptools_table["packages"]["find"]
        listed = set(find_packages(str(ROOT / find.get("where", ["."])[0]), include=find.get("include", ["*"]),
                                   exclude=find.get("exclude", [])))
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "spline_utils").rglob("__init__.py")}
    assert found <= listed, f"pyproject.toml [tool.setuptools] packages misses {sorted(found - listed)}"
