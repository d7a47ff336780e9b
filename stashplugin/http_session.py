"""The requests session PlexSync uses for Stash and for Plex (one of each per process).

`requests.Session` reads the proxy environment (`HTTP_PROXY`, `NO_PROXY`, ...) again for every
request: two passes over all of `os.environ` each time, about a tenth of a drain's CPU time at a
few thousand requests. The environment does not change while a plugin process runs, so this
session reads it once per server and then uses the answer, which is the same one requests would
compute. Everything else (`REQUESTS_CA_BUNDLE`, `.netrc`, `trust_env = False`) behaves as in
requests itself.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies


class Session(requests.Session):
    """A requests.Session that asks the environment for each server's proxies only once."""

    def __init__(self):
        super().__init__()
        self._environ_proxies = {}  # (scheme, host[:port], no_proxy) -> what the environment says

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
