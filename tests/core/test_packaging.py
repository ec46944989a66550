"""A non-editable install finds its subpackages and bundled stations."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_non_editable_install_has_the_mapped_packages_and_bundled_data(tmp_path):
    target = tmp_path / "site"
    source = tmp_path / "src"  # build from a copy: setuptools writes build/ into the tree
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", "*.h5", "benchmarks", "tests"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    code = (
        "import labpnn, labpnn.paths as p, labpnn.drivers, labpnn.procedures.calibration, "
        "labpnn.mock_instruments, labpnn.gui;"
        "print(labpnn.__file__); print(sorted(p.bundled_stations()))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    first, stations = out.stdout.strip().splitlines()
    assert first.startswith(str(target))
    assert "optical-sim" in stations


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    found = set()
    for pkg, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found - listed == set(), "add these packages to pyproject.toml"
