"""Embed tokens (data_sources/embed/tokens.py): signed, expiring, and refused with a reason when
they do not hold; the origins an embed may be framed by, and the settings that configure both."""

from __future__ import annotations

import base64
import hashlib
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import Signer, URLSafeSerializer
from pydantic import ValidationError

from data_sources.embed.origins import MAX_ORIGINS, parse_origin, parse_origins
from data_sources.embed.panels import PANELS
from data_sources.embed.tokens import (
    MAX_TOKEN_CHARS,
    SALT,
    EmbedClaims,
    TokenError,
    mint,
    verify,
)
from data_sources.settings import Settings

SECRET = b"s" * 43
NOW = 1_800_000_000
CLAIMS = EmbedClaims(
    grant=7, scope="530102", panels=("kpis", "map"), lang="en", exp=NOW + 600, iat=NOW
)


def refused(token: str, *, secret: bytes = SECRET, now: float = NOW, leeway_s: float = 30) -> str:
    """Why `token` is refused (fails the test when it is not)."""
    with pytest.raises(TokenError) as caught:
        verify(secret, token, now=now, leeway_s=leeway_s)
    return caught.value.reason


def signed_payload(payload: object, secret: bytes = SECRET) -> str:
    """`payload` signed as a token is (with our key): a token whose signature holds, whatever
    it says."""
    serializer = URLSafeSerializer(
        secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    return serializer.dumps(payload)


def signed_bytes(data: bytes, secret: bytes = SECRET) -> str:
    """Raw bytes, base64url-encoded and signed as a token's payload is."""
    signer = Signer(secret, salt=SALT, digest_method=hashlib.sha256)
    body = base64.urlsafe_b64encode(data).rstrip(b"=")
    return signer.sign(body).decode()


def claims_json(**changes: object) -> dict[str, object]:
    return {
        "grant": 7,
        "scope": "530102",
        "panels": ["kpis", "map"],
        "lang": "en",
        "exp": NOW + 600,
        "iat": NOW,
    } | changes


# ---------------------------------------------------------------- round trip


def test_a_minted_token_verifies_to_its_claims() -> None:
    token = mint(SECRET, CLAIMS)
    assert verify(SECRET, token, now=NOW) == CLAIMS
    assert set(token) <= set(string.ascii_letters + string.digits + "-_.")  # URL-safe as it is
    assert len(token) < 300


def test_every_panel_in_a_token_stays_far_below_the_limit() -> None:
    claims = EmbedClaims(2**62, "x" * 32, PANELS, "zh", 2**40, 2**40 - 1)
    token = mint(SECRET, claims)
    assert verify(SECRET, token, now=2**40) == claims
    assert len(token) < MAX_TOKEN_CHARS // 4


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"panels": ()}, "at least one panel"),
        ({"panels": ("kpis", "clock")}, "no such panel: 'clock'"),
        ({"panels": ("map", "kpis")}, "PANELS order"),
        ({"lang": "fr"}, "lang must be zh or en"),
        ({"grant": 0}, "positive id"),
        ({"scope": ""}, "scope must be"),
        ({"iat": NOW + 601}, "iat <= exp"),
    ],
)
def test_claims_no_token_may_carry_are_not_minted(change: dict[str, object], problem: str) -> None:
    fields = {f: getattr(CLAIMS, f) for f in ("grant", "scope", "panels", "lang", "exp", "iat")}
    with pytest.raises(ValueError, match=problem):
        mint(SECRET, EmbedClaims(**(fields | change)))  # type: ignore[arg-type]


# ---------------------------------------------------------------- tampered


def test_a_changed_payload_is_tampered() -> None:
    token = mint(SECRET, CLAIMS)
    other = mint(SECRET, EmbedClaims(8, "530102", ("kpis", "map"), "en", NOW + 600, NOW))
    # The payload of another token with this token's signature.
    assert refused(other.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]) == "tampered"
    # A payload written by hand (grant 1, no compression), signature kept.
    forged = base64.urlsafe_b64encode(json.dumps(claims_json(grant=1)).encode()).rstrip(b"=")
    assert refused(forged.decode() + "." + token.rsplit(".", 1)[1]) == "tampered"


def test_a_changed_signature_is_tampered() -> None:
    token = mint(SECRET, CLAIMS)
    last = token[-1]
    assert refused(token[:-1] + ("A" if last != "A" else "B")) == "tampered"
    assert refused(token.rsplit(".", 1)[0] + ".AAAA") == "tampered"


def test_a_token_of_another_secret_is_tampered() -> None:
    assert refused(mint(b"t" * 43, CLAIMS)) == "tampered"
    assert refused(signed_payload(claims_json(), secret=b"t" * 43)) == "tampered"


def test_another_salt_or_digest_is_tampered() -> None:
    """Another use of itsdangerous with the same key (a session cookie…) is no embed token."""
    other_salt = URLSafeSerializer(
        SECRET, salt="cookie", signer_kwargs={"digest_method": hashlib.sha256}
    )
    assert refused(other_salt.dumps(claims_json())) == "tampered"
    assert refused(URLSafeSerializer(SECRET, salt=SALT).dumps(claims_json())) == "tampered"  # SHA-1


# ---------------------------------------------------------------- expiry


def test_a_token_holds_until_its_expiry_plus_the_leeway() -> None:
    token = mint(SECRET, CLAIMS)
    assert verify(SECRET, token, now=CLAIMS.exp) == CLAIMS
    assert verify(SECRET, token, now=CLAIMS.exp + 29.9) == CLAIMS
    assert verify(SECRET, token, now=CLAIMS.exp + 30) == CLAIMS
    assert refused(token, now=CLAIMS.exp + 30.1) == "expired"
    assert refused(token, now=CLAIMS.exp + 86_400) == "expired"


def test_without_leeway_a_token_ends_at_its_expiry() -> None:
    token = mint(SECRET, CLAIMS)
    assert verify(SECRET, token, now=CLAIMS.exp, leeway_s=0) == CLAIMS
    assert refused(token, now=CLAIMS.exp + 0.5, leeway_s=0) == "expired"


def test_a_tampered_expired_token_is_tampered_not_expired() -> None:
    """The signature is checked first: nothing a forger wrote is believed, its expiry neither."""
    token = mint(b"t" * 43, CLAIMS)
    assert refused(token, now=CLAIMS.exp + 3600) == "tampered"


# ---------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        ".",
        "a.",
        ".b",
        "a b.c",
        "a.b.c",
        "a.b\n",
        "a\x00.b",
        "令牌.签名",
        "a.b" + "é",
        "\ud800.b",
        "a" * (MAX_TOKEN_CHARS - 1) + ".b",  # one over the limit
        "x" * 1_000_000 + ".y",
    ],
    ids=lambda t: repr(t[:12]) + (f"…({len(t)})" if len(t) > 12 else ""),
)
def test_malformed_tokens(token: str) -> None:
    assert refused(token) == "malformed"


def test_a_token_of_exactly_the_limit_is_read() -> None:
    token = "a" * (MAX_TOKEN_CHARS - 2) + ".b"
    assert len(token) == MAX_TOKEN_CHARS
    assert refused(token) == "tampered"  # within the limit and shaped: its signature is checked


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "an", "object"],
        "text",
        claims_json(grant="7"),
        claims_json(grant=True),
        claims_json(grant=7.0),
        claims_json(grant=-1),
        claims_json(scope=530102),
        claims_json(scope="x" * 33),
        claims_json(panels="kpis,map"),
        claims_json(panels=[]),
        claims_json(panels=["kpis", "clock"]),
        claims_json(panels=["kpis", 1]),
        claims_json(panels=["kpis", "kpis"]),
        claims_json(lang="fr"),
        claims_json(exp="soon"),
        claims_json(exp=NOW + 600.5),
        claims_json(iat=NOW + 601),
        claims_json(extra=1),
        {k: v for k, v in claims_json().items() if k != "exp"},
    ],
    ids=lambda p: json.dumps(p)[:60],
)
def test_a_signed_payload_that_is_no_claims_is_malformed(payload: object) -> None:
    """Signed with our key and still wrong (a bug, or a leaked key): never taken as claims."""
    assert refused(signed_payload(payload)) == "malformed"


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"", b"[1, 2", b'{"grant": NaN}'])
def test_a_signed_payload_that_does_not_decode_is_malformed(data: bytes) -> None:
    assert refused(signed_bytes(data)) == "malformed"


def test_a_signed_payload_that_is_not_base64_is_malformed() -> None:
    signer = Signer(SECRET, salt=SALT, digest_method=hashlib.sha256)
    assert refused(signer.sign(b"a").decode()) == "malformed"  # one base64 character: no byte
    assert refused(signer.sign(b".AAAA").decode()) == "malformed"  # "compressed", and is not


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"\.?[A-Za-z0-9_-]{1,80}\.[A-Za-z0-9_-]{1,60}"))
def test_any_text_is_a_token_or_refused_with_a_reason(text: str) -> None:
    with pytest.raises(TokenError) as caught:
        verify(SECRET, text, now=NOW)
    assert caught.value.reason in ("malformed", "tampered")


# ---------------------------------------------------------------- origins and settings


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://portal.example", "https://portal.example"),
        ("HTTPS://Portal.Example:443", "https://portal.example"),
        ("http://localhost:8050", "http://localhost:8050"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        (" https://a.example ", "https://a.example"),
        ("https://[0:0::1]:8443", "https://[::1]:8443"),
        ("https://xn--fsqu00a.cn", "https://xn--fsqu00a.cn"),
    ],
)
def test_origins_are_kept_as_browsers_write_them(text: str, origin: str) -> None:
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("portal.example", "has no scheme://"),
        ("ftp://portal.example", "the scheme is 'ftp'"),
        ("https://portal.example/", "remove '/' (an origin has no path)"),
        ("https://portal.example/embed?x=1", "remove '/embed?x=1'"),
        ("https://user:pw@portal.example", "names a user"),
        ("https://user@portal.example", "names a user"),
        ("https://*.portal.example", "wildcards are not allowed"),
        ("https://例子.cn", "xn-- (punycode)"),
        ("https://a..example", "is not a host name"),
        ("https://", "it has no host"),
        ("https://a.example:0", "the port '0' is not a number from 1 to 65535"),
        ("https://a.example:65536", "the port '65536'"),
        ("https://a.example:", "the port ''"),
        ("https://[::g]", "is not an IPv6 address"),
        # Review: a zone id kept `;sandbox;` into the CSP's frame-ancestors.
        ("http://[fe80::1%a;sandbox;x]", "has a zone id"),
        ("null", "has no scheme://"),
    ],
)
def test_what_is_no_origin_says_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="is not an origin") as caught:
        parse_origin(text)
    assert problem in str(caught.value)


def test_origin_lists_split_on_spaces_and_commas_once_each() -> None:
    assert parse_origins("https://a.example, https://b.example:8443  https://A.example") == (
        "https://a.example",
        "https://b.example:8443",
    )
    assert parse_origins(["https://a.example", "http://b.example"]) == (
        "https://a.example",
        "http://b.example",
    )
    assert parse_origins("") == ()
    with pytest.raises(ValueError, match=f"at most {MAX_ORIGINS}"):
        parse_origins(" ".join(f"https://h{i}.example" for i in range(MAX_ORIGINS + 1)))


def test_settings_read_the_embed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCC_EMBED_SECRET", "k" * 40)
    monkeypatch.setenv("GRIDCC_EMBED_ALLOWED_ORIGINS", "https://a.example,http://localhost:8000")
    monkeypatch.setenv("GRIDCC_EMBED_TOKEN_MAX_S", "1800")
    monkeypatch.setenv("GRIDCC_EMBED_TOKEN_DEFAULT_S", "300")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.embed_secret is not None and s.embed_secret.get_secret_value() == "k" * 40
    assert "k" * 40 not in repr(s)
    assert s.embed_allowed_origins == ("https://a.example", "http://localhost:8000")
    assert (s.embed_token_max_s, s.embed_token_default_s) == (1800, 300)


def test_embed_settings_default_to_a_stored_secret_and_no_origins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SECRET", "ALLOWED_ORIGINS", "TOKEN_MAX_S", "TOKEN_DEFAULT_S"):
        monkeypatch.delenv(f"GRIDCC_EMBED_{name}", raising=False)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.embed_secret, s.embed_allowed_origins) == (None, ())
    assert (s.embed_token_max_s, s.embed_token_default_s) == (3600, 600)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "ALLOWED_ORIGINS",
            "https://a.example https://b.example/",
            "'https://b.example/' is not an origin",
        ),
        ("SECRET", "short", "GRIDCC_EMBED_SECRET has 5 characters"),
        ("TOKEN_DEFAULT_S", "7200", "GRIDCC_EMBED_TOKEN_DEFAULT_S (7200) is over"),
        ("TOKEN_MAX_S", "30", "greater than or equal to 60"),
    ],
)
def test_bad_embed_settings_say_why(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(f"GRIDCC_EMBED_{name}", value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert problem in str(caught.value)
