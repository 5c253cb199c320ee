"""Security headers on every response, API docs off without a CDN, no server paths in any answer,
and the job record's outcome (walking found, warnings, the uploaded file's name).

Real uvicorn server on 127.0.0.1; the outcome test runs a real analysis with the shipped models.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    REPO,
    SHIPPED_POSE,
    live_server_factory_fixture,
    make_settings,
    tiny_models_fixture,
    upload,
    wait_terminal,
)

A = {"X-API-Key": "key-alpha"}
STATIC = REPO / "service" / "static"


def assert_secure(r: httpx.Response) -> None:
    h = r.headers
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    csp = h.get("content-security-policy", "")
    assert ("frame-ancestors 'none'" in csp and "object-src 'none'" in csp) or "sandbox" in csp, where
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[-1].split(";", 1)[0], where
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("x-frame-options") == "DENY", where
    assert h.get("referrer-policy") == "no-referrer", where


@pytest.fixture
def server(tiny_models, tmp_path, live_server_factory):
    settings = make_settings(tmp_path, *tiny_models, api_keys="key-alpha", workers=1, upload_limit_mb=1.0)
    srv = live_server_factory(settings)
    srv.data_dir = settings.data_dir
    return srv


def test_every_response_carries_the_headers(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        responses = [
            c.get("/"), c.get("/static/app.js"), c.get("/static/style.css"), c.get("/static/nope.js"),
            c.get("/healthz"), c.get("/readyz"), c.get("/metrics"), c.get("/openapi.json"), c.get("/docs"),
            c.get("/v1/analyses"), c.get("/v1/analyses", headers=A), c.get("/v1/analyses/abc", headers=A),
            c.post("/v1/pose", headers={**A, "Content-Length": "0"}),
            c.post("/v1/analyses", headers={**A, "Content-Type": "text/plain"}, content=b"x"),
            upload(c, headers=A, content=b"not a video at all" * 40),
            upload(c, headers=A),
        ]
        job = responses[-1].json()
        wait_terminal(c, job["id"], A)
        responses += [c.get(f"/v1/analyses/{job['id']}", headers=A),
                      c.delete(f"/v1/analyses/{job['id']}", headers=A)]
    codes = {r.status_code for r in responses}
    assert {200, 202, 204, 401, 404, 415}.issubset(codes), codes
    for r in responses:
        assert_secure(r)
    assert responses[8].status_code == 404  # /docs: off by default (Swagger UI would load from a CDN)


def test_docs_can_be_switched_on_with_their_own_policy(tiny_models, tmp_path, live_server_factory):
    srv = live_server_factory(make_settings(tmp_path, *tiny_models, api_docs=True))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.get("/docs")
        assert r.status_code == 200
        assert "cdn.jsdelivr.net" in r.headers["content-security-policy"]
        assert "cdn.jsdelivr.net" not in c.get("/").headers["content-security-policy"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_page_satisfies_the_policy() -> None:
    """The page loads only same-origin scripts and styles and has no inline script or handler."""
    p = _Tags()
    p.feed((STATIC / "index.html").read_text())
    assert p.inline_scripts == 0
    for tag, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)  # inline handlers are blocked
        assert "style" not in attrs, (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
        if tag == "link" and attrs.get("rel") == "stylesheet":
            assert attrs.get("href", "").startswith("/static/"), attrs
    assert "<style" not in (STATIC / "index.html").read_text()


def test_no_server_paths_in_any_answer(tiny_models, tmp_path, live_server_factory):
    missing = tmp_path / "no-such-dir" / "pose.onnx"
    srv = live_server_factory(make_settings(tmp_path, missing))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "pose.onnx" in ready.json()["detail"]
        refused = upload(c)
        assert refused.status_code == 503
    for r in (ready, refused):
        assert str(tmp_path) not in r.text and "/no-such-dir/" not in r.text, r.text


def test_scrub_paths_keeps_the_file_name() -> None:
    from service.housekeeping import scrub_paths

    assert scrub_paths("/srv/x/jobs/ab/upload/walk.mp4: corrupt") == "walk.mp4: corrupt"
    assert scrub_paths("analysis failed: OSError: [Errno 28] No space left: '/data/jobs/a/b.json'") == \
        "analysis failed: OSError: [Errno 28] No space left: 'b.json'"
    assert scrub_paths("height_cm must be between 50 and 250") == "height_cm must be between 50 and 250"


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _walk_strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_POSE.is_file(), reason="shipped models/ not present")
def test_job_record_has_outcome_name_and_no_paths_and_report_fits_its_policy(live_server_factory, tmp_path):
    settings = make_settings(tmp_path, None, upload_limit_mb=50.0, overlay=False)
    srv = live_server_factory(settings)
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = upload(c, path=CLIP, name="Gait Trial 3.mp4")
        assert r.status_code == 202, r.text
        job = wait_terminal(c, r.json()["id"], timeout=300)
        assert job["status"] == "succeeded", job["error"]
        listed = c.get("/v1/analyses").json()
        metrics = c.get(f"/v1/analyses/{job['id']}/metrics.json").json()
        report = c.get(f"/v1/analyses/{job['id']}/report.html")
        page = c.get("/")
    assert job["filename"] == "Gait Trial 3.mp4"
    assert isinstance(job["walking_found"], bool) and job["walking_found"] == metrics["walking_found"]
    assert job["warnings"] == metrics["warnings"]
    assert ".gaitpose-result" not in job["summary"].get("files", [])
    for text in _walk_strings([job, listed]):
        if text.startswith("/v1/"):
            continue  # result URLs
        assert str(tmp_path) not in text and not re.search(r"(^|\s)/\w+/", text), text
    assert json.dumps(job).count(str(Path(settings.data_dir))) == 0

    # report.html: sandboxed with its own policy, shows the uploaded name, runs no script
    assert report.status_code == 200
    assert "sandbox" in report.headers["content-security-policy"]
    assert "Gait Trial 3" in report.text
    assert "<script" not in report.text.lower()
    # opened from the page as a blob: document it inherits the page's policy: its styles must be allowed
    styles = re.findall(r"<style>(.*?)</style>", report.text, flags=re.S)
    assert styles
    page_csp = page.headers["content-security-policy"]
    for css in styles:
        assert _sha256_source(css) in page_csp
    assert "img-src 'self' data:" in page_csp
