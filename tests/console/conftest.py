"""The browser fixtures (``live_server``, ``chromium``) for every console test."""

from tests.console.browser import chromium as chromium
from tests.console.browser import live_server as live_server
