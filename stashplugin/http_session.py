"""The requests session PlexSync uses for Stash and for Plex (one of each per process).

`requests.Session` looks at the environment again for every request: the proxy variables
(`HTTP_PROXY`, `NO_PROXY`, ...: two passes over all of `os.environ`) and, for a request without
credentials, `~/.netrc`. At a few thousand requests that was about a sixth of a drain's CPU time.
Neither changes while a plugin process runs, so this session looks once per server and then uses
the answer, the same one requests would compute. Everything else (`REQUESTS_CA_BUNDLE`,
`trust_env = False`, redirects) behaves as in requests itself.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies, get_netrc_auth


def _no_credentials(request):
    """The auth of a request `.netrc` has nothing for: sends it unchanged."""
    return request


class Session(requests.Session):
    """A requests.Session that asks the environment about each server only once."""

    def __init__(self):
        super().__init__()
        self._environ_proxies = {}  # (scheme, host[:port], no_proxy) -> what the environment says
        self._netrc = {}  # (scheme, host[:port]) -> .netrc's (login, password), or _no_credentials

    def prepare_request(self, request):
        """requests' own, with its `.netrc` lookup (made for a request without credentials while
        `trust_env` is on) answered once per server; "nothing there" is a no-op auth."""
        if self.trust_env and not request.auth and not self.auth:
            parts = urlsplit(request.url)
            key = (parts.scheme, parts.netloc)
            if key not in self._netrc:
                self._netrc[key] = get_netrc_auth(request.url) or _no_credentials
            request.auth = self._netrc[key]
        return super().prepare_request(request)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests' own merge (requests/sessions.py, the same from 2.28 on), with the
        environment's proxies for this URL's server looked up once."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        env_proxies = self._environ_proxies.get(key)
        if env_proxies is None:
            env_proxies = self._environ_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }
