"""The report as a browser shows it: a headless Chromium screenshot with the plots drawn."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

WIDTH, HEIGHT = 1280, 2400


def chromium_screenshot(page, out, user_data_dir):
    """Screenshot a file:// page with headless Chromium, with every network feature off."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not installed, so the report cannot be screenshotted; "
                    "install it with apt-get install chromium (.ci/run does)")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={user_data_dir}", f"--screenshot={out}",
               f"--window-size={WIDTH},{HEIGHT}", page.absolute().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_report_screenshot_shows_plots(real_run, tmp_path):
    shot = chromium_screenshot(real_run.report, tmp_path / "report.png", tmp_path / "profile")

    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    non_white = np.any(pixels < 245, axis=2).mean()
    # Text and table borders are grey. Only the plots put strongly coloured pixels on the
    # page: the blue cost curve, the blue confusion matrix cells, the coloured layer lines.
    coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 60).mean()
    assert non_white > 0.05
    assert coloured > 0.02
    assert pixels.std() > 20
