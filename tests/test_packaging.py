"""The package builds as it would for PyPI: ``python -m build`` (sdist, then the wheel from the sdist) and
``twine check --strict`` pass, and the wheel holds every subpackage, the license and the declared dependencies.

The build runs on a copy of the files git would commit (tracked and untracked, not ignored), without build
isolation: the backend is requirements.txt's pinned setuptools, which must satisfy ``[build-system] requires``.
"""
import email.parser
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True)
    names = [name for name in listed.stdout.split("\0") if name] if listed.returncode == 0 else None
    if names is None:
        pytest.skip("not a git checkout: the build copies git's list of files")
    for name in names:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, f"python -m build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    return out, source


def test_build_makes_one_sdist_and_one_wheel(dist):
    out, _ = dist
    version = PROJECT["version"]
    assert sorted(path.name for path in out.iterdir()) == [f"spline_utils-{version}-py3-none-any.whl",
                                                           f"spline_utils-{version}.tar.gz"]


def test_twine_check_passes(dist):
    out, _ = dist
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(out.iterdir()))],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.count("PASSED") == 2, checked.stdout + checked.stderr


def test_wheel_has_every_subpackage_the_license_and_the_dependencies(dist):
    out, source = dist
    wheel = zipfile.ZipFile(next(out.glob("*.whl")))
    names = set(wheel.namelist())
    packages = {path.parent.relative_to(source).as_posix() for path in (source / "spline_utils").rglob("__init__.py")}
    missing = sorted(package for package in packages if f"{package}/__init__.py" not in names)
    assert not missing, f"the wheel lacks {missing}: pyproject.toml's package discovery misses them"
    modules = {path.relative_to(source).as_posix() for path in (source / "spline_utils").rglob("*.py")}
    assert modules <= names, f"the wheel lacks modules {sorted(modules - names)}"
    info = f"spline_utils-{PROJECT['version']}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["Name"] == "spline_utils" and metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown"
    declared = {str(Requirement(line)) for line in PROJECT["dependencies"]}
    shipped = {str(Requirement(line)) for line in metadata.get_all("Requires-Dist") if "extra ==" not in line}
    assert shipped == declared


def test_sdist_has_the_sources_readme_and_license(dist):
    out, source = dist
    sdist = tarfile.open(next(out.glob("*.tar.gz")))
    top = f"spline_utils-{PROJECT['version']}"
    names = set(sdist.getnames())
    for needed in ("pyproject.toml", "README.md", "LICENSE", "spline_utils/__init__.py"):
        assert f"{top}/{needed}" in names, f"the sdist lacks {needed}"
    modules = {f"{top}/{path.relative_to(source).as_posix()}" for path in (source / "spline_utils").rglob("*.py")}
    assert modules <= names, f"the sdist lacks {sorted(modules - names)}"
