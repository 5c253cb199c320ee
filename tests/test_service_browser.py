"""The web page in a real headless Chromium (Debian package) against the real server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    live_server_factory_fixture,
    make_settings,
    tiny_models_fixture,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]


def test_upload_through_the_page_and_see_the_job_finish(tiny_models, tmp_path, live_server_factory):
    playwright = pytest.importorskip("playwright.sync_api")
    srv = live_server_factory(make_settings(tmp_path, *tiny_models, api_keys="browser-key"))
    shot = Path(tmp_path) / "service_page.png"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(srv.url + "/")
            assert page.title().startswith("gaitpose")
            page.fill("#apikey", "browser-key")
            page.dispatch_event("#apikey", "change")
            page.set_input_files("#video", str(CLIP))
            page.fill("#height", "175")
            page.click("#submit")
            page.wait_for_function("document.getElementById('upload-status').textContent.includes('job')",
                                   timeout=30_000)
            assert page.eval_on_selector("#upload-progress", "e => e.value") == 100
            row = page.locator("#jobs tbody tr").first
            row.wait_for(timeout=10_000)
            assert "pose2sim_cam01.mp4" in row.inner_text()
            page.wait_for_selector("#jobs tbody tr[data-status=succeeded], #jobs tbody tr[data-status=failed]",
                                   timeout=90_000)
            status = row.get_attribute("data-status")
            row.get_by_role("button", name="view").click()
            page.wait_for_selector("#result:not([hidden])")
            if status == "failed":
                assert page.inner_text("#result-error").strip()
            else:
                page.wait_for_function("document.querySelectorAll('#metrics tr').length > 0", timeout=30_000)
                assert page.eval_on_selector("#overlay", "v => v.src.startsWith('blob:')")
            # the key is remembered for the next visit
            assert page.evaluate("localStorage.getItem('gaitpose.apiKey')") == "browser-key"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 5000
    keep = Path(__file__).resolve().parents[1] / "out"
    if keep.is_dir():  # handy for a human check; out/ is git-ignored
        shutil.copy(shot, keep / "service_page.png")
