"""Clicks in the domain: the landing URL a click is sent to, who counts as a crawler,
what is kept of the referring site and the UTM parameters, the attribution window."""

from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.domain.clicks import (
    Click,
    days_between,
    is_bot,
    is_valid_click_id,
    new_click_id,
    referring_site,
    tracked_url,
    utm_of,
)
from referrals.domain.errors import InvalidInput
from referrals.domain.program import Program

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("landing", "expected"),
    [
        ("https://a.example", "https://a.example?ref=AL&click_id=C1"),
        ("https://a.example/x?", "https://a.example/x?ref=AL&click_id=C1"),
        ("https://a.example/x?q=a%20b&z", "https://a.example/x?q=a%20b&z&ref=AL&click_id=C1"),
        ("https://a.example/?REF=1&ref=old#f", "https://a.example/?REF=1&ref=AL&click_id=C1#f"),
        ("https://a.example/?click_id=x&r%65f=y&k=1", "https://a.example/?k=1&ref=AL&click_id=C1"),
    ],
)
def test_the_tracked_url_merges_ref_and_click_id_into_the_query(
    landing: str, expected: str
) -> None:
    assert tracked_url(landing, "AL", "C1") == expected


def test_without_a_click_only_the_ref_is_added() -> None:
    assert tracked_url("https://a.example/?x=1", "AL", None) == "https://a.example/?x=1&ref=AL"


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0 Safari/537.36",
    ],
)
def test_browsers_are_people(agent: str) -> None:
    assert not is_bot(agent)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Twitterbot/1.0",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Wget/1.21",
        None,
        "   ",
    ],
)
def test_crawlers_unfurlers_and_tools_are_bots(agent: str | None) -> None:
    assert is_bot(agent)


def test_a_click_id_is_144_random_bits_url_safe() -> None:
    ids = {new_click_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_valid_click_id(i) for i in ids)
    assert not is_valid_click_id("a" * 23) and not is_valid_click_id("a" * 23 + "/")


@pytest.mark.parametrize(
    ("referer", "site"),
    [
        ("https://News.Example.com:8443/p/1?u=me", "news.example.com"),
        ("android-app://com.slack/", "com.slack"),
        ("not a url", None),
        ("http://[::1", None),
        (None, None),
    ],
)
def test_the_referring_site_is_its_host_only(referer: str | None, site: str | None) -> None:
    assert referring_site(referer) == site


def test_utm_parameters_are_printable_and_truncated() -> None:
    utm = utm_of({"utm_source": "news\x00letter\n", "utm_medium": "", "utm_term": "t" * 300})
    assert utm == {
        "utm_source": "newsletter",
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": "t" * 100,
        "utm_content": None,
    }


def test_the_window_counts_from_the_click_to_its_last_day() -> None:
    click = Click("c", "default", "AL", "alice", T0)
    assert click.attributes_at(T0 + timedelta(days=30), 30)
    assert not click.attributes_at(T0 + timedelta(days=30, microseconds=1), 30)
    assert click.attributes_at(T0 - timedelta(seconds=30), 30)  # clock skew between servers
    assert not click.attributes_at(T0 - timedelta(hours=1), 30)


def test_a_window_touches_the_utc_days_it_spans() -> None:
    end = datetime(2026, 3, 3, tzinfo=UTC)
    assert days_between(T0, end) == [date(2026, 3, 1), date(2026, 3, 2)]
    assert days_between(end, end) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"landing_url": "javascript:alert(1)"}, "landing_url"),
        ({"landing_url": "https://a.example/\n"}, "landing_url"),
        ({"attribution_window_days": 0}, "attribution_window_days"),
        ({"attribution_window_days": 366}, "attribution_window_days"),
    ],
)
def test_a_program_refuses_bad_attribution_settings_naming_them(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Program("partners", "Partners", **changes)  # type: ignore[arg-type]
    assert refused.value.field == field
