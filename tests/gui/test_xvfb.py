"""`labpnn gui` starts on a real X server (Xvfb, xcb platform) and draws a real window."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import REPO


@pytest.mark.skipif(
    shutil.which("Xvfb") is None,
    reason="the Xvfb binary is absent (make sysdeps installs the xvfb package)",
)
def test_labpnn_gui_starts_under_xvfb_and_its_screenshot_is_not_blank(tmp_path):
    shot = tmp_path / "xvfb-gui.png"
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "xvfb_smoke.sh"), str(shot)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "distinct colours" in out.stdout
    assert shot.stat().st_size > 10_000
