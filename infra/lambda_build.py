"""``make lambda``: the write-back Lambda's package, ``var/lambda/writeback.zip``.

The app's pinned runtime requirements as manylinux wheels for Lambda's Python 3.11 on x86_64
(installed by uv for that platform, whatever this machine is), the app's packages, and
``lambda_entry.py`` at the root. The wheels are zipped once per requirements file (kept as
``var/lambda/deps-<hash>.zip``); each build copies that and adds the app's current source.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .config import BASE_DIR, LAMBDA_ZIP

PLATFORM = "x86_64-manylinux_2_17"
PYTHON_VERSION = "3.11"
REQUIREMENTS = BASE_DIR / "requirements.txt"
APP_PACKAGES = ("hybridsite", "catalog", "projections", "carts", "drafts", "orders", "writeback", "ops")
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit for a function's code, unzipped


def _dependencies() -> Path:
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + f"{PLATFORM} {PYTHON_VERSION}".encode()).hexdigest()[:16]
    archive = LAMBDA_ZIP.parent / f"deps-{key}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    if archive.exists():
        return archive
    with tempfile.TemporaryDirectory() as target:
        subprocess.run(
            [str(Path(sys.executable).parent / "uv"), "pip", "install", "--quiet", "--python", sys.executable,
             "--target", target, "--python-platform", PLATFORM, "--python-version", PYTHON_VERSION,
             "--only-binary", ":all:", "-r", str(REQUIREMENTS)],
            check=True,
        )
        partial = archive.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as package:
            _add_tree(package, Path(target), Path(target))
        partial.rename(archive)
    return archive


def _add_tree(package: zipfile.ZipFile, root: Path, base: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            package.write(path, str(path.relative_to(base)))


def build(output: Path = LAMBDA_ZIP) -> Path:
    """The package, built anew from the cached wheels and the current source; returns its path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    shutil.copyfile(_dependencies(), partial)
    with zipfile.ZipFile(partial, "a", zipfile.ZIP_DEFLATED) as package:
        for name in APP_PACKAGES:
            _add_tree(package, BASE_DIR / name, BASE_DIR)
        package.write(Path(__file__).with_name("lambda_entry.py"), "lambda_entry.py")
        unzipped = sum(info.file_size for info in package.infolist())
    if unzipped >= UNZIPPED_LIMIT:
        partial.unlink()
        raise RuntimeError(f"the Lambda package is {unzipped / 2**20:.0f} MB unzipped, over Lambda's 250 MB")
    partial.rename(output)
    return output


def main() -> None:
    path = build()
    with zipfile.ZipFile(path) as package:
        unzipped = sum(info.file_size for info in package.infolist())
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MB, {unzipped / 2**20:.1f} MB unzipped (limit 250 MB)")


if __name__ == "__main__":
    main()
