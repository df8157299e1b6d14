"""The HTML report renders in a real headless browser (Debian's chromium): images decode, layout draws."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from lfagent.report import write_report
from run_dir_fixture import build_run_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = build_run_dir(tmp_path_factory.mktemp("browser"))
    return write_report(run_dir, embeddings=False, sandbox=False)


def test_report_dom_renders_with_all_images_decoded(report):
    done = chromium("--virtual-time-budget=10000", "--dump-dom", report.as_uri())
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r'<body[^>]*data-images-ok="4/4"', dom), "not every plot decoded (naturalWidth > 0)"
    assert dom.count("<figure") == 4 and len(re.findall(r"<img\s", dom)) == 4
    assert "<h1>lfagent report: fixture-spam</h1>" in dom
    assert "Kept labeling functions (5)" in dom


def test_report_screenshot_is_not_blank(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    done = chromium("--window-size=1280,2400", f"--screenshot={shot}", report.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    # plots and tables draw dark ink on the light page: a blank or failed page is one flat colour
    dark = (pixels.mean(axis=2) < 0.5).mean()
    rgb = (pixels * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).size
    assert 0.005 < dark < 0.5 and colours > 50
