"""Intake's pure parts: phone masking, the token bucket, reading free text and
email, survey replies, Open311 XML, webhook signatures, the status merge."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from email.message import EmailMessage

import pytest

from services.intake.channels.mail import read_letter
from services.intake.channels.open311.render import to_xml
from services.intake.channels.sms import rating_of
from services.intake.lookup import FailureBackoff
from services.intake.protection import _utf8_problem
from services.intake.textparse import caller_key, fold, guess_category, guess_place
from shared.directory import load_directory
from shared.events import Rating
from shared.logmask import PhoneMaskingFilter, mask_phone, mask_phones
from shared.ratelimit import TokenBuckets
from shared.settings import IntakeSettings
from shared.signing import sign, verify

DIRECTORY = load_directory(IntakeSettings().districts_file, IntakeSettings().directory_file)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("caller 13812345678 again", "caller 138****5678 again"),
        ("+8613812345678", "+86138****5678"),
        ("8613812345678", "86138****5678"),
        ("两个号码13812345678和15900001111", "两个号码138****5678和159****1111"),
        ("ticket LC20261126000001", "ticket LC20261126000001"),  # 14 digits: not a phone
        ("landline 06358888888", "landline 06358888888"),
        ("123456789012", "123456789012"),  # 12 digits: not a mobile
    ],
)
def test_mobile_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_phones(text) == masked


def test_mask_phone_for_one_number() -> None:
    assert mask_phone("+86 138-1234-5678") == "861****5678"
    assert mask_phone(None) == "-"
    assert mask_phone("123") == "****"


def test_the_logging_filter_masks_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "from %s", ("13812345678",), None)
    assert PhoneMaskingFilter().filter(record)
    assert record.getMessage() == "from 138****5678"
    try:
        raise ValueError("bad caller 13812345678")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", None, sys.exc_info())
    PhoneMaskingFilter().filter(failed)
    assert failed.exc_text is not None
    assert "138****5678" in failed.exc_text and "13812345678" not in failed.exc_text


def test_token_bucket_allows_a_burst_then_refills() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=60.0, burst=2, clock=lambda: now[0])
    assert [buckets.take("k"), buckets.take("k")] == [0.0, 0.0]
    assert buckets.take("k") == pytest.approx(1.0)  # one token a second
    assert buckets.take("other") == 0.0  # buckets are independent
    now[0] = 1.0
    assert buckets.take("k") == 0.0
    assert buckets.take("k") > 0


def test_lookup_misses_back_off_per_key_doubling_then_forgiven() -> None:
    now = [0.0]
    misses = FailureBackoff(free=3, base_s=60.0, cap_s=3600.0, clock=lambda: now[0])
    for _ in range(3):
        assert misses.wait("a|T1") == 0.0
        misses.miss("a|T1")
    assert misses.wait("a|T1") == 60.0  # the fourth try waits a minute
    assert misses.wait("b|T1") == 0.0 and misses.wait("a|T2") == 0.0  # others are free
    now[0] = 60.0
    assert misses.wait("a|T1") == 0.0
    misses.miss("a|T1")
    assert misses.wait("a|T1") == 120.0  # doubled
    for _ in range(10):
        now[0] += misses.wait("a|T1")
        misses.miss("a|T1")
    assert misses.wait("a|T1") == 3600.0  # capped at an hour
    now[0] += 3601.0
    assert misses.wait("a|T1") == 0.0  # an hour without a miss: forgiven


def test_utf8_check_covers_body_and_query() -> None:
    assert _utf8_problem(b"ticket=LC1", "路灯".encode()) is None
    assert "query" in (_utf8_problem(b"ticket=%FF", b"") or "")
    assert "body" in (_utf8_problem(b"", "路灯".encode("gbk")) or "")


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("冠县贾镇村口路灯坏了", ("guanxian", "贾镇")),
        ("阳谷县紫荆街有垃圾", ("yanggu", None)),
        ("阳谷紫荆街有垃圾", ("yanggu", None)),
        ("我家门口有垃圾", (None, None)),
    ],
)
def test_place_is_read_from_free_text(text: str, place: tuple[str | None, str | None]) -> None:
    assert guess_place(text, DIRECTORY) == place


def test_category_from_words() -> None:
    assert guess_category("我要投诉噪音").value == "complaint"
    assert guess_category("请问社保怎么办理").value == "consultation"
    assert guess_category("感谢环卫工人").value == "praise"
    assert guess_category("路灯坏了").value == "help"


def test_one_caller_one_key_whatever_the_form() -> None:
    assert caller_key("+86 138 1234 5678", None) == caller_key("13812345678", None)
    assert caller_key(None, "Wang@Example.cn ") == caller_key(None, "wang@example.cn")
    assert caller_key(None, None) is None
    assert "13812345678" not in (caller_key("13812345678", None) or "")


def test_fold_ignores_width_case_and_punctuation() -> None:
    assert fold("路灯坏了！ＫＴＶ吵") == fold("路灯坏了 ktv吵。")


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("1", Rating.SATISFIED),
        ("满意", Rating.SATISFIED),
        ("基本满意", Rating.BASICALLY_SATISFIED),
        ("LC20261126000001 不满意", Rating.UNSATISFIED),
        ("3。", Rating.UNSATISFIED),
        ("我不满意这个处理结果，路灯还是不亮", None),
        ("4", None),
    ],
)
def test_survey_replies(text: str, rating: Rating | None) -> None:
    assert rating_of(text) is rating


def test_email_in_gbk_quoted_printable_with_an_encoded_subject() -> None:
    message = EmailMessage()
    message["From"] = "=?utf-8?b?546L5YWI55Sf?= <wang@example.cn>"
    message["Subject"] = "东阿县停水"
    message["Message-ID"] = "<a@b>"
    message.set_content("小区停水三天了。", charset="gbk", cte="quoted-printable")
    letter = read_letter(message.as_bytes(), "bounce@example.cn")
    assert (letter.sender, letter.sender_name) == ("wang@example.cn", "王先生")
    assert letter.subject == "东阿县停水"
    assert letter.body == "小区停水三天了。"
    assert letter.text == "东阿县停水\n小区停水三天了。"
    assert not letter.automatic


def test_html_only_email_and_auto_replies() -> None:
    message = EmailMessage()
    message["From"] = "robot@example.cn"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("<p>路灯<b>不亮</b></p>", subtype="html", charset="utf-8", cte="base64")
    letter = read_letter(message.as_bytes(), None)
    assert letter.body == "路灯 不亮"
    assert letter.automatic


def test_xml_escapes_values_and_drops_what_xml_cannot_carry() -> None:
    value = [{"description": "<b>&'\"</b>\x00\x07 end", "ok": True, "none": None}]
    root = ET.fromstring(to_xml("service_requests", value))
    request = root.find("request")
    assert request is not None
    assert request.findtext("description") == "<b>&'\"</b> end"
    assert request.findtext("ok") == "true"
    assert request.find("none") is not None and request.findtext("none") == ""


def test_signature_verification() -> None:
    body, now = b'{"a":1}', 1_700_000_000.0
    good = sign("s", str(int(now)), body)
    assert verify("s", str(int(now)), good, body, now, 300) is None
    assert verify("s", str(int(now)), good, body + b" ", now, 300) == "bad signature"
    assert verify("s", str(int(now) - 301), good, body, now, 300) == "stale timestamp"
    assert verify("s", None, good, body, now, 300) == "missing signature or timestamp"
    assert verify("s", "soon", good, body, now, 300) == "timestamp is not a number of seconds"
