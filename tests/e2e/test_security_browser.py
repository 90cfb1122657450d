"""Every page under the server's Content-Security-Policy, in a real Chromium: nothing blocked.

The policy allows no inline script or style; a page that still had one would lose
it silently in the browser (a button that does nothing). Each page is walked as a
user would, with a listener for ``securitypolicyviolation`` events and the console's
CSP errors; a screenshot of each is kept in the test's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import Server, expect, sign_in
from tests.e2e.test_browser import browser as browser  # a fixture
from tests.e2e.test_browser import server as server  # a fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile + ":" + e.lineNumber;
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + where);
});
"""


def watched(page: Any, problems: list[str]) -> Any:
    page.add_init_script(WATCH)
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


def violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__csp || []"))


def test_no_page_breaks_the_content_security_policy(
    browser: Any,
    server: Server,
    tmp_path: Path,
) -> None:
    problems: list[str] = []
    seen: dict[str, list[str]] = {}

    public = watched(browser.new_context(locale="zh-CN").new_page(), problems)
    for path in ("/", "/status", "/chat/"):
        public.goto(server.url + path)
        public.wait_for_load_state("networkidle")
        if path == "/chat/":
            public.click("#hc-open")
            public.wait_for_selector("#hc-input")
        if path == "/status":
            public.fill("#number", "20261127-0001")
            public.fill("#last4", "0000")
            public.click("#submit")
            # (not wait_for_function: Playwright evaluates it with eval, which the policy blocks)
            expect(public.locator("#error")).not_to_have_text("")
        public.screenshot(path=str(tmp_path / f"public{path.replace('/', '_')}.png"))
        seen[path] = violations(public)

    login = watched(browser.new_context(locale="en").new_page(), problems)
    login.goto(server.url + "/ui/login")
    login.wait_for_load_state("networkidle")
    seen["/ui/login"] = violations(login)

    for username, pages in (
        ("agent1", ["/ui/desk"]),
        ("supervisor", ["/ui/wallboard", "/ui/portal"]),
        ("mh-municipal", ["/ui/portal"]),
    ):
        page = sign_in(browser, server, username)
        watched(page, problems)
        for path in pages:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(tmp_path / f"{username}{path.replace('/', '_')}.png"))
            seen[f"{username} {path}"] = violations(page)
        page.context.close()

    public.context.close()  # the widget's and the pages' sockets, before the server stops
    login.context.close()
    assert all(not v for v in seen.values()), seen
    assert problems == []
