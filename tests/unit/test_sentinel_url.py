"""global_view's Sentinel URLs and the RESP reply counter of ping() (pure)."""

from __future__ import annotations

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import global_view as g


def test_a_sentinel_url_names_its_sentinels_the_primary_the_db_and_the_password() -> None:
    assert g.parse_sentinel_url("redis+sentinel://:p%40w@a:1,b,c:3/onvm/2") == (
        [("a", 1), ("b", 26379), ("c", 3)],
        "onvm",
        2,
        "p@w",
    )
    assert g.parse_sentinel_url("redis+sentinel://a/onvm") == ([("a", 26379)], "onvm", 0, None)
    assert g.replicated("redis+sentinel://a/onvm") and not g.replicated("redis://a:6379/0")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://a:x/onvm",
        "redis+sentinel://a:1/",
        "redis+sentinel://a/onvm/x",
        "redis+sentinel:///n",
    ],
)
def test_a_malformed_sentinel_url_is_refused_in_words(url: str) -> None:
    with pytest.raises(ValueError, match="sentinel"):
        g.parse_sentinel_url(url)
    assert (g.ping(url) or "").startswith("bad Redis URL")


def test_whole_replies_are_counted_and_partial_ones_are_not() -> None:
    assert g._replies(b"*2\r\n$3\r\nabc\r\n$4\r\n6379\r\n") == 1
    assert g._replies(b"*-1\r\n") == 1  # a sentinel that does not know the name
    assert g._replies(b"+OK\r\n*2\r\n$3\r\nab") == 1
    assert g._replies(b"+OK\r\n-ERR x\r\n") == 2
    assert g._replies(b"$5\r\nhel") == 0
