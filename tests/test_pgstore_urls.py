"""URL handling of the central store: a password never survives masking, whatever the URL looks like."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.pgstore import is_pg_url, lock_key, mask_url, pg_sql, target_key

secret = st.text(st.characters(blacklist_categories=("Cs",)), min_size=6, max_size=30).filter(
    lambda s: s.strip() and "*" not in s)
word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(user=word, pw=secret, host=word, db=word, where=st.sampled_from(["userinfo", "query"]))
def test_masked_url_never_shows_the_password(user, pw, host, db, where):
    enc = quote(pw, safe="")
    url = (f"postgresql://{user}:{enc}@{host}:5432/{db}" if where == "userinfo"
           else f"postgresql://{user}@{host}/{db}?sslmode=require&password={enc}")
    shown = mask_url(url)
    parts = urlsplit(shown)
    if where == "userinfo":
        assert shown == f"postgresql://{user}:***@{host}:5432/{db}"
    else:
        assert parse_qs(parts.query)["password"] == ["***"] and parts.netloc == f"{user}@{host}"
    key = urlsplit(target_key(url))
    assert key.password is None and "password" not in key.query and key.hostname == host.lower()
    assert is_pg_url(url)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_masked_without_error(text):
    assert isinstance(mask_url(text), str)
    assert isinstance(lock_key(text), int) and -(2**63) <= lock_key(text) < 2**63


def test_placeholders_and_percent_signs():
    assert pg_sql("select 1 where a = ? and b like 'x%'") == "select 1 where a = %s and b like 'x%%'"
    assert not is_pg_url("/var/lib/camsweep/camsweep.db") and is_pg_url("POSTGRESQL://h/db")
