"""A cookie jar for the shared HTTP client that skips responses without cookies."""

from __future__ import annotations

import httpx


class SetCookieOnly(httpx.Cookies):
    """``httpx.Cookies`` that parses a response only when it carries ``Set-Cookie``.

    httpx hands every response to ``http.cookiejar`` (two compatibility objects and a
    policy walk per response) even when there is nothing to store; LLM APIs rarely set
    cookies, and when one does, it is stored exactly as httpx would.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)
