"""PlexSync's requests session (stashplugin/http_session.py) answers the environment exactly as
requests does (proxy variables, NO_PROXY, a CA bundle, ~/.netrc), while looking only once per server."""

from __future__ import annotations

import requests

from stashplugin.http_session import Session

URLS = [
    "http://plex.lan:32400/library/metadata/12",
    "https://plex.lan:32400/library/sections/1/all?type=1&id=12",
    "http://stash.local:9999/graphql",
    "http://10.0.0.5:9999/scene/7/screenshot?t=1",
]


def test_proxies_no_proxy_and_ca_bundle_come_out_as_requests_computes_them(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy.example:3129")
    monkeypatch.setenv("NO_PROXY", "stash.local,10.0.0.0/8")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/local-ca.pem")
    ours, theirs = Session(), requests.Session()
    for _ in range(2):  # the second time from what the first one looked up
        for url in URLS:
            assert ours.merge_environment_settings(url, {}, None, None, None) == (
                theirs.merge_environment_settings(url, {}, None, None, None)
            ), url
    proxies = ours.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"]
    assert proxies["http"] == "http://proxy.example:3128"
    assert ours.merge_environment_settings(URLS[2], {}, None, None, None)["proxies"] == {}
    ours.trust_env = theirs.trust_env = False
    assert ours.merge_environment_settings(URLS[0], {}, None, None, None) == (
        theirs.merge_environment_settings(URLS[0], {}, None, None, None)
    )


def test_netrc_credentials_are_sent_to_their_host_only(monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine plex.lan login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    ours, theirs = Session(), requests.Session()
    for _ in range(2):
        for url in URLS:
            mine = ours.prepare_request(requests.Request("PUT", url))
            reference = theirs.prepare_request(requests.Request("PUT", url))
            assert mine.headers == reference.headers, url
    assert "Authorization" in ours.prepare_request(requests.Request("GET", URLS[0])).headers
    assert "Authorization" not in ours.prepare_request(requests.Request("GET", URLS[2])).headers
    explicit = ours.prepare_request(requests.Request("GET", URLS[0], auth=("bob", "pw")))
    assert explicit.headers["Authorization"] == requests.auth._basic_auth_str("bob", "pw")
