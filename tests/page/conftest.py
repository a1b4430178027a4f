"""Fixtures for page tests: Debian's Chromium driven by Playwright, and logged-in browser contexts."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread, which makes Django refuse ORM
# calls from that thread unless this is set. Tests here query the database between page steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def chromium():
    """Launch Debian's Chromium once per test session; skip without it, except in CI."""
    if not CHROMIUM_PATH.exists():
        message = f"{CHROMIUM_PATH} not found: install it with `apt-get install -y chromium`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium, live_server):
    """Return a factory of browser contexts on the live server, logged in as `user` if given."""
    from django.conf import settings
    from django.test import Client

    contexts = []

    def build(user=None, **options):
        context = chromium.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(15_000)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                        "url": live_server.url,
                    }
                ]
            )
        contexts.append(context)
        return context

    yield build
    for context in contexts:
        context.close()
