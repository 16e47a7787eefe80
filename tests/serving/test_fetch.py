"""URL fetches: the validator alone (no network), then scripted servers on 127.0.0.1 for
redirects, DNS rebinding, slow and huge responses. No test connects anywhere else."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket

import httpcore
import pytest
from fastapi.testclient import TestClient

from itsacat.errors import ItsacatError
from itsacat.serving import ServingSettings, create_app
from itsacat.serving.fetch import (
    FetchPolicy,
    address_kind,
    fetch_image,
    parse_allow_list,
    validate_url,
)
from itsacat.serving.swap import StaticSource

from .conftest import served
from .remote import ScriptedServer, flood, redirect_to, serve_body, silent, trickle
from .test_routes import png_bytes, random_pixels

# Validator cases that need no shared data; the shared part A list is checked as well.
REJECTED_URLS = {
    "file:///etc/passwd": "url_scheme_not_allowed",
    "ftp://127.0.0.1/x.jpg": "url_scheme_not_allowed",
    "gopher://127.0.0.1:70/_x": "url_scheme_not_allowed",
    "data:image/png;base64,AAAA": "url_scheme_not_allowed",
    "http://127.0.0.1/cat.jpg": "address_not_allowed",
    "http://localhost/cat.jpg": "address_not_allowed",
    "http://cats.localhost/cat.jpg": "address_not_allowed",
    "http://[::1]/cat.jpg": "address_not_allowed",
    "http://[::ffff:127.0.0.1]/cat.jpg": "address_not_allowed",
    "http://2130706433/cat.jpg": "address_not_allowed",
    "http://0177.0.0.1/cat.jpg": "address_not_allowed",
    "http://0x7f.1/cat.jpg": "address_not_allowed",
    "http://0.0.0.0/cat.jpg": "address_not_allowed",
    "http://10.0.0.5/cat.jpg": "address_not_allowed",
    "http://172.16.3.4/cat.jpg": "address_not_allowed",
    "http://192.168.1.1/cat.jpg": "address_not_allowed",
    "http://169.254.169.254/latest/": "address_not_allowed",
    "http://100.64.0.1/cat.jpg": "address_not_allowed",
    "http://224.0.0.1/cat.jpg": "address_not_allowed",
    "http://240.0.0.1/cat.jpg": "address_not_allowed",
    "http://[fe80::1]/cat.jpg": "address_not_allowed",
    "http://[2002:7f00:1::]/cat.jpg": "address_not_allowed",
    "http://[64:ff9b::a00:5]/cat.jpg": "address_not_allowed",
    "http://user:pw@127.0.0.1/cat.jpg": "url_credentials_not_allowed",
    "http://example.test:99999/cat.jpg": "url_invalid",
    "http://example.test:0/cat.jpg": "url_invalid",
    "http:///cat.jpg": "url_invalid",
}


class NoNetwork(httpcore.AsyncNetworkBackend):
    """A network backend that records every connection attempt and opens none."""

    def __init__(self):
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None,
                          socket_options=None):
        self.attempts.append((host, port))
        raise AssertionError(f"the fetcher tried to connect to {host}:{port}")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScriptedResolver:
    """A resolver that returns its address lists in turn (the last one forever) and counts
    lookups."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


def loopback_policy(*servers: ScriptedServer, **limits) -> FetchPolicy:
    """Permit exactly the given servers' ports on 127.0.0.1."""
    allow = ",".join(f"127.0.0.1/32:{server.port}" for server in servers)
    return FetchPolicy(allow=parse_allow_list(allow), **limits)


def fetch(url: str, policy: FetchPolicy, **options) -> bytes:
    return asyncio.run(fetch_image(url, policy, **options))


def fetch_error(url: str, policy: FetchPolicy, **options) -> ItsacatError:
    with pytest.raises(ItsacatError) as raised:
        fetch(url, policy, **options)
    return raised.value


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# The validator alone, with no network.

@pytest.mark.parametrize(("url", "code"), REJECTED_URLS.items())
def test_validate_url_rejects_unsafe_url(url, code):
    with pytest.raises(ItsacatError) as raised:
        validate_url(url, FetchPolicy())

    assert raised.value.code == code
    assert raised.value.http_status == 400


def test_validate_url_rejects_every_shared_case(cases):
    document = json.loads((cases / "ssrf_url_cases.json").read_text())

    for case in document["A_validator_only_must_refuse"]:
        with pytest.raises(ItsacatError) as raised:
            validate_url(case["url"], FetchPolicy())
        assert raised.value.http_status == 400, case


def test_validate_url_names_loopback_address():
    with pytest.raises(ItsacatError) as raised:
        validate_url("http://2130706433/cat.jpg", FetchPolicy())

    assert raised.value.message == (
        "http://2130706433/cat.jpg: 2130706433, which resolves to 127.0.0.1, is a loopback "
        "address, which the service does not fetch from; to allow it on purpose, add it to "
        "ITSACAT_FETCH_ALLOW (--fetch-allow)")


@pytest.mark.parametrize("url", list(REJECTED_URLS))
def test_fetch_image_rejects_unsafe_url_before_connecting(url):
    network, resolver = NoNetwork(), ScriptedResolver(["127.0.0.1"])

    with pytest.raises(ItsacatError):
        fetch(url, FetchPolicy(), resolver=resolver, network=network)

    assert network.attempts == []
    assert resolver.lookups == []


def test_fetch_image_rejects_name_resolving_to_private_address():
    network = NoNetwork()
    # NoNetwork fails the test on any connection attempt, so no address here is contacted.
    resolver = ScriptedResolver(["93.184.215.14", "10.1.2.3"])

    error = fetch_error("http://cats.example/cat.jpg", FetchPolicy(), resolver=resolver,
                        network=network)

    assert error.code == "address_not_allowed"
    assert error.message.startswith("http://cats.example/cat.jpg: cats.example, which "
                                    "resolves to 10.1.2.3, is a private address")
    assert network.attempts == []


def test_validate_url_accepts_public_https_url():
    target = validate_url("https://Example.org/cats/1.jpg?size=64", FetchPolicy())

    assert (target.scheme, target.host, target.port, target.target) == (
        "https", "example.org", 443, "/cats/1.jpg?size=64")


def test_allow_list_permits_loopback_on_purpose():
    policy = FetchPolicy(allow=parse_allow_list("127.0.0.1/32, 10.0.0.0/8:8081"))

    assert validate_url("http://127.0.0.1:5000/x.png", policy).port == 5000
    assert validate_url("http://localhost/x.png", policy).host == "localhost"
    assert validate_url("http://10.9.8.7:8081/x.png", policy).host == "10.9.8.7"
    with pytest.raises(ItsacatError):
        validate_url("http://10.9.8.7:8080/x.png", policy)
    with pytest.raises(ItsacatError):
        validate_url("http://[::1]/x.png", policy)


def test_allow_list_invalid_entry_is_named():
    with pytest.raises(ItsacatError) as raised:
        parse_allow_list("127.0.0.1/32,cats")

    assert raised.value.message == ("fetch allow-list entry 'cats' is not a network; write "
                                     "127.0.0.1/32, 10.0.0.0/8 or, for one port, "
                                     "127.0.0.1/32:8081")


def test_address_kind_sees_ipv4_inside_ipv6():
    cases = {"::ffff:10.0.0.1": "a private address", "2002:a9fe:a9fe::": "a link-local address",
             "64:ff9b::7f00:1": "a loopback address", "2606:4700::1111": None,
             "8.8.8.8": None}

    for text, kind in cases.items():
        assert address_kind(ipaddress.ip_address(text)) == kind, text


# Redirects and DNS rebinding, against servers on 127.0.0.1.

def test_fetch_redirect_to_untrusted_port_rejected():
    with ScriptedServer(serve_body(b"secret")) as sink, \
            ScriptedServer(redirect_to(lambda n: f"{sink.origin}/secret")) as origin:
        error = fetch_error(f"{origin.origin}/cat.png", loopback_policy(origin))

    assert error.code == "address_not_allowed"
    assert error.message.startswith(f"{sink.origin}/secret: 127.0.0.1 is a loopback address")
    assert sink.connections == 0


def test_fetch_redirect_chain_stops_after_three_hops():
    with ScriptedServer(redirect_to(lambda n: f"/hop/{n}")) as origin:
        error = fetch_error(f"{origin.origin}/start", loopback_policy(origin))

    assert error.code == "too_many_redirects"
    assert error.message == (f"{origin.origin}/start: more than 3 redirects; give the final "
                             "URL of the picture")
    assert len(origin.requests) == 4


def test_fetch_redirect_to_file_scheme_rejected():
    with ScriptedServer(redirect_to(lambda n: "file:///etc/hostname")) as origin:
        error = fetch_error(f"{origin.origin}/cat.png", loopback_policy(origin))

    assert error.code == "url_scheme_not_allowed"
    assert error.message == ("file:///etc/hostname: the scheme 'file' is not allowed; use an "
                             "http or https URL")


def test_fetch_connects_to_the_address_it_checked():
    if not ipv6_loopback_available():
        pytest.skip("::1 is not available on this machine")
    picture = png_bytes(random_pixels())
    with ScriptedServer(serve_body(picture)) as origin, \
            ScriptedServer(serve_body(b"secret"), host="::1", port=origin.port) as sink:
        # The first lookup returns the permitted origin, every later one the sink.
        resolver = ScriptedResolver(["127.0.0.1"], ["::1"])
        body = fetch(f"http://cats.test:{origin.port}/cat.png", loopback_policy(origin),
                     resolver=resolver)

    assert body == picture
    assert resolver.lookups == ["cats.test"]
    assert sink.connections == 0


def test_fetch_rebinding_on_new_connection_is_checked_again():
    if not ipv6_loopback_available():
        pytest.skip("::1 is not available on this machine")
    with ScriptedServer(redirect_to(lambda n: "/again", close=True)) as origin, \
            ScriptedServer(serve_body(b"secret"), host="::1", port=origin.port) as sink:
        resolver = ScriptedResolver(["127.0.0.1"], ["::1"])
        error = fetch_error(f"http://cats.test:{origin.port}/cat.png", loopback_policy(origin),
                            resolver=resolver)

    assert error.code == "address_not_allowed"
    assert error.message.startswith(f"http://cats.test:{origin.port}/again: cats.test, which "
                                    "resolves to ::1, is a loopback address")
    assert resolver.lookups == ["cats.test", "cats.test"]
    assert sink.connections == 0


# Slow and huge responses.

def test_fetch_silent_server_times_out():
    with ScriptedServer(silent) as origin:
        error = fetch_error(f"{origin.origin}/cat.jpg",
                            loopback_policy(origin, read_timeout=0.3, total_timeout=5))

    assert error.code == "fetch_timed_out"
    assert error.http_status == 400
    assert error.message == (f"{origin.origin}/cat.jpg: the fetch timed out after 0.3 s "
                             "(waiting for data); give a faster URL or upload the picture")


def test_fetch_trickling_body_stopped_by_overall_deadline():
    # One byte every 0.1 s never trips the 0.5 s read timeout; only the deadline ends it.
    with ScriptedServer(trickle(0.1)) as origin:
        error = fetch_error(f"{origin.origin}/cat.jpg",
                            loopback_policy(origin, read_timeout=0.5, total_timeout=1.0))

    assert error.code == "fetch_timed_out"
    assert error.message == (f"{origin.origin}/cat.jpg: the fetch timed out after 1 s (the "
                             "overall deadline passed); give a faster URL or upload the "
                             "picture")


def test_fetch_huge_declared_length_rejected_from_header():
    with ScriptedServer(flood(10_737_418_240)) as origin:
        error = fetch_error(f"{origin.origin}/huge.jpg",
                            loopback_policy(origin, max_bytes=1_000_000))

    assert error.code == "remote_too_large"
    assert error.http_status == 413
    assert error.message == (f"{origin.origin}/huge.jpg: the response is over the limit of "
                             "1,000,000 bytes; give a smaller picture")


def test_fetch_endless_body_stopped_at_byte_cap():
    with ScriptedServer(flood(None)) as origin:
        error = fetch_error(f"{origin.origin}/endless.jpg",
                            loopback_policy(origin, max_bytes=1_000_000))
        origin.stopped.set()

    assert error.code == "remote_too_large"
    # The server keeps writing until the socket closes; kernel buffers hold a few MB at most.
    assert origin.bytes_sent < 50_000_000


def test_fetch_error_status_is_named():
    def not_found(connection, server):
        server.read_request(connection)
        server.send(connection, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with ScriptedServer(not_found) as origin:
        error = fetch_error(f"{origin.origin}/gone.jpg", loopback_policy(origin))

    assert error.code == "fetch_failed"
    assert error.message == (f"{origin.origin}/gone.jpg: the fetch failed (the server "
                             "returned HTTP 404, expected 200)")


# Through the service.

def fetching_client(model, *servers: ScriptedServer, **limits) -> TestClient:
    settings = ServingSettings(slot="blue", fetch=loopback_policy(*servers, **limits))
    return TestClient(create_app(settings, StaticSource(served(model))))


def test_predict_url_matches_upload(model):
    picture = png_bytes(random_pixels(11))
    with ScriptedServer(serve_body(picture)) as origin, fetching_client(model, origin) as client:
        by_url = client.post("/predict", json={"url": f"{origin.origin}/cat.png"})
        uploaded = client.post("/predict", content=picture)

    assert by_url.status_code == 200
    assert by_url.json() == uploaded.json()


def test_predict_url_to_loopback_rejected_without_allow_list(client):
    with ScriptedServer(serve_body(b"secret")) as sink:
        response = client.post("/predict", json={"url": f"{sink.origin}/cat.png"})

    assert response.status_code == 400
    assert response.json()["error"] == "address_not_allowed"
    assert sink.connections == 0


def test_predict_url_serving_html_returns_400(model):
    page = b"<!doctype html><html><body>not a picture</body></html>"
    with ScriptedServer(serve_body(page, "text/html")) as origin, \
            fetching_client(model, origin) as client:
        response = client.post("/predict", json={"url": f"{origin.origin}/page"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "undecodable_image",
        "detail": f"{origin.origin}/page: not a recognised image format; send one of JPEG, "
                  "PNG, GIF, WEBP, BMP, TIFF"}


def test_image_page_shows_picture_and_prediction(model):
    picture = png_bytes(random_pixels(12))
    with ScriptedServer(serve_body(picture)) as origin, fetching_client(model, origin) as client:
        url = f"{origin.origin}/cat.png?caption=<b>hi</b>"
        page = client.get("/image", params={"image": url})
        label = client.post("/predict", content=picture).json()["label"]

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{label}</h1>" in page.text
    assert '<img src="data:image/png;base64,' in page.text
    assert "caption=&lt;b&gt;hi&lt;/b&gt;" in page.text
    assert "<b>hi</b>" not in page.text
