"""Webhook signatures and the URLs the ledger will call (api/webhooks.py, issue #19).

Every signature is verified with the `standardwebhooks` package (an implementation of the
Standard Webhooks specification that is not ours), and tampering with any part of a delivery
makes it fail there."""

from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.webhooks import SECRET_PREFIX, headers, new_secret, url_problem


def test_a_new_secret_is_whsec_and_24_random_bytes():
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX))) == 24
    assert new_secret() != secret


@given(
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    # The package decodes the body as JSON once it has verified it: a receipt is JSON.
    body=st.text(max_size=500).map(
        lambda t: json.dumps({"type": "movement.gate_in", "n": t}).encode()
    ),
)
def test_every_signature_verifies_with_an_independent_implementation(msg_id, body):
    secret = new_secret()
    now = int(time.time())
    signed = headers(secret, msg_id, now, body)
    Webhook(secret).verify(body, signed)  # raises when it does not verify
    for tampered in (
        {**signed, "webhook-id": msg_id + "x"},
        {**signed, "webhook-timestamp": str(now - 1)},
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, signed)


def _resolving(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # RFC 1918
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # link-local: cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "::1",
        "fe80::1",
        "fd00::1",  # RFC 4193
        "::ffff:10.0.0.1",  # IPv4-mapped private
    ],
)
def test_a_host_resolving_to_a_private_address_is_refused(address):
    problem = url_problem(
        "https://hooks.example.com/in", set(), _resolving("93.184.216.34", address)
    )
    assert problem is not None and address in problem


def test_a_public_https_url_is_allowed_and_the_allowlist_admits_http_and_private_hosts():
    public = _resolving("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert url_problem("https://hooks.example.com/in?x=1", set(), public) is None
    assert url_problem("http://hooks.example.com/in", set(), public) is not None
    loopback = _resolving("127.0.0.1")
    assert url_problem("http://127.0.0.1:8080/hook", {"127.0.0.1"}, loopback) is None
    assert url_problem("http://127.0.0.1:8080/hook", set(), loopback) is not None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/in",
        "https:///no-host",
        "https://user:pw@hooks.example.com/in",
        "https://hooks.example.com/in#part",
        "https://hooks.example.com:99999/in",
        "not a url",
        "https://" + "a" * 2100 + ".com/",
    ],
)
def test_a_url_that_breaks_the_rules_is_refused_without_resolving(url):
    def never(host, port):
        raise AssertionError("resolved a URL that was refused before")

    assert url_problem(url, set(), never) is not None


def test_a_host_that_does_not_resolve_is_refused():
    def fails(host, port):
        raise OSError("Name or service not known")

    assert "does not resolve" in (url_problem("https://nowhere.invalid/", set(), fails) or "")
