"""The web page in a real headless Chromium (Debian package) against the real server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    DATA,
    SHIPPED_POSE,
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


@pytest.mark.skipif(not SHIPPED_POSE.exists(), reason="shipped models not present")
def test_upload_through_the_page_and_see_the_job_finish(tmp_path, live_server_factory):
    """The lab clip (a lunge, not walking) through the page with the shipped models: the job list
    says "no walking found" instead of a plain "succeeded"."""
    playwright = pytest.importorskip("playwright.sync_api")
    srv = live_server_factory(make_settings(tmp_path, None, api_keys="browser-key"))
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
            page.wait_for_function("() => document.getElementById('upload-status').textContent.includes('job')",
                                   timeout=30_000)
            assert page.eval_on_selector("#upload-progress", "e => e.value") == 100
            row = page.locator("#jobs tbody tr").first
            row.wait_for(timeout=10_000)
            assert "pose2sim_cam01.mp4" in row.inner_text()
            page.wait_for_selector("#jobs tbody tr[data-status=succeeded], #jobs tbody tr[data-status=failed]",
                                   timeout=90_000)
            status = row.get_attribute("data-status")
            assert status == "succeeded"
            job_id = row.get_attribute("data-id")
            walking = page.evaluate(
                "async (id) => (await (await fetch('/v1/analyses/' + id,"
                " {headers: {'X-API-Key': 'browser-key'}})).json()).walking_found", job_id)
            assert walking is False  # a lunge in place
            # the list says the outcome, not just "succeeded", with the reason on hover
            cell = page.locator(f"#jobs tr[data-id='{job_id}'] td:nth-child(2)")
            page.wait_for_function("([id]) => document.querySelector(`#jobs tr[data-id='${id}'] td:nth-child(2)`)"
                                   ".textContent === 'no walking found'", arg=[job_id], timeout=10_000)
            assert "no walking found" in (cell.get_attribute("title") or "")
            row.get_by_role("button", name="view").click()
            page.wait_for_selector("#result:not([hidden])")
            page.wait_for_function("() => document.body.innerText.includes('No walking was detected')",
                                   timeout=30_000)
            # the key is remembered for the next visit
            assert page.evaluate("localStorage.getItem('gaitpose.apiKey')") == "browser-key"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 5000
    keep = Path(__file__).resolve().parents[1] / "out"
    if keep.is_dir():  # handy for a human check; out/ is git-ignored
        shutil.copy(shot, keep / "service_page.png")


# A dotted JSON key path such as symmetry_detail.step_length_si_pct (file names are allowed).
RAW_KEY = r"\b[a-z0-9]+_[a-z0-9_]*\.(?!mp4\b|json\b|png\b|html\b|csv\b|onnx\b)[a-z_]+"


@pytest.mark.skipif(not SHIPPED_POSE.exists(), reason="shipped pose model not present")
def test_result_view_is_a_clinical_report_with_the_skeleton_over_the_video(tmp_path, live_server_factory):
    """The walk clip through the real server and shipped models: the page shows the clinical view
    (table with units and references, flags, key frames), draws the skeleton on a canvas over the
    original upload in the browser, prints without cut-off scroll boxes and shows no raw keys."""
    playwright = pytest.importorskip("playwright.sync_api")
    srv = live_server_factory(make_settings(tmp_path, None))
    walk = DATA / "sports2d_walk.mp4"
    shot = Path(tmp_path) / "result_view.png"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "/")
            page.set_input_files("#video", str(walk))
            page.click("#submit")
            row = page.locator("#jobs tbody tr").first
            row.wait_for(timeout=10_000)
            page.wait_for_selector("#jobs tbody tr[data-status=succeeded]", timeout=120_000)
            row.get_by_role("button", name="view").click()
            page.wait_for_function("() => document.querySelectorAll('#st-table tbody tr').length > 5", timeout=30_000)

            table = page.inner_text("#st-table")
            for unit in ("steps/min", "% of cycle", "leg lengths", " s"):
                assert unit in table, f"unit {unit!r} missing from the table"
            assert "Healthy adult reference" in table and "Perry" in table
            cadence = page.locator("#st-table tbody tr", has_text="Cadence").inner_text()
            assert any(ch.isdigit() for ch in cadence.split("Cadence", 1)[1])
            assert page.locator("#flags .flag").count() > 0  # this clip's step lengths do not add up
            assert page.locator("#stills img").count() >= 2
            assert page.eval_on_selector("#stills img", "i => i.complete && i.naturalWidth > 0")
            assert page.locator("#angle-table tbody tr").count() == 6

            # the original upload plays with the skeleton drawn on the canvas from keypoints.json
            page.wait_for_function("() => document.getElementById('video-player').readyState >= 2", timeout=30_000)
            page.evaluate("""() => new Promise((done) => {
                const v = document.getElementById('video-player');
                v.addEventListener('seeked', () => setTimeout(done, 200), { once: true });
                v.currentTime = 3.0;
            })""")
            painted = page.evaluate("""() => {
                const c = document.getElementById('skeleton');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return [c.width, c.height, n];
            }""")
            assert painted[:2] == [640, 360]  # the canvas matches the source video's pixels
            assert painted[2] > 200, f"skeleton canvas is empty: {painted}"
            assert page.eval_on_selector("#video-player", "v => v.src.startsWith('blob:') && !v.error")

            text = page.inner_text("#result-body")
            import re

            assert not re.findall(RAW_KEY, text), re.findall(RAW_KEY, text)[:5]
            assert "symmetry_detail" not in text and "stage_seconds" not in text
            assert not re.findall(r"\b[a-z]+(?:_[a-z0-9]+){2,}\b", text)  # no snake_case JSON keys either
            assert not errors, errors

            # the printable report opens styled (its inline stylesheet is allowed by the page's CSP)
            with page.context.expect_page(timeout=15_000) as opened:
                page.click("#report-link")
            report = opened.value
            report.wait_for_load_state()
            assert "Spatio-temporal parameters" in report.inner_text("body")
            bg = report.eval_on_selector(".disclaimer", "e => getComputedStyle(e).backgroundColor")
            assert bg not in ("rgba(0, 0, 0, 0)", "transparent"), "report.html lost its stylesheet"
            report.close()

            # printed, nothing sits in a scroll box that would cut it off
            page.emulate_media(media="print")
            clipped = page.evaluate("""() => [...document.querySelectorAll('#result *')].filter((e) => {
                const s = getComputedStyle(e);
                return /(auto|scroll|hidden)/.test(s.overflowY) && e.scrollHeight > e.clientHeight + 2
                    && s.display !== 'none' && e.tagName !== 'VIDEO' && e.tagName !== 'CANVAS';
            }).map((e) => e.id || e.className || e.tagName)""")
            assert clipped == [], clipped
            page.emulate_media(media="screen")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    keep = Path(__file__).resolve().parents[1] / "out"
    if keep.is_dir():  # handy for a human check; out/ is git-ignored
        shutil.copy(shot, keep / "result_view.png")
