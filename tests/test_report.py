"""`nncap report`: a static HTML report, checked in a real headless browser."""

import re
import shutil
import subprocess

import pytest

from pipeline.report import write_report
from pipeline.select import run_select
from tests.cli_helpers import nncap
from tests.test_select import tiny_study

CHECK = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.title = 'images:' + imgs.length + ' broken:' + broken;
});</script>"""


@pytest.fixture(scope="module")
def full_store(tmp_path_factory):
    """A store with every kind of content the report shows."""
    tmp = tmp_path_factory.mktemp("report")
    url = tmp / "s.zarr"
    nncap("import", url, "gt:karate", "gt:dolphins", "gt:lesmis", "--scheduler", "sync")
    nncap("structure", url, "--scheduler", "sync")
    nncap("topology", url, "--scheduler", "sync")
    nncap("compare", url, "--by", "weighted", "--randomise", "2", "--scheduler", "sync")
    nncap("resilience", url, "--all", "--points", "4", "--init", "high", "--beta-target", "12",
          "--out", tmp / "res", "--scheduler", "sync")
    run_select(tiny_study(tmp), str(url), client=None, show_progress=False)
    return tmp, url


def test_report_sections_and_files(full_store):
    tmp, url = full_store
    index = write_report(str(url), tmp / "report")
    page = index.read_text()
    ids = re.findall(r"<section id='([^']+)'>", page)
    assert ids[:6] == ["catalog", "degrees", "structure", "topology", "comparison", "randomisation"]
    assert any(i.startswith("resilience-") for i in ids) and "tiny-select" in ids
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) >= 5 and all((tmp / "report" / src).stat().st_size > 1000 for src in images)
    assert "<script" not in page and "http" not in page.split("</style>")[1].split("Store ")[0]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(full_store):
    """The report in a real browser: every image loads, and a screenshot is taken."""
    tmp, url = full_store
    browser = shutil.which("chromium")
    assert browser, "the report test needs Debian's chromium (make setup installs it)"
    index = write_report(str(url), tmp / "report")
    check = index.with_name("check.html")
    check.write_text(index.read_text().replace("</body>", CHECK + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-default-apps"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=10000", "--dump-dom", check.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    n_images = int(re.search(r"images:(\d+)", title).group(1))
    assert n_images >= 5 and title.endswith("broken:0"), title
    shot = tmp / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", index.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
