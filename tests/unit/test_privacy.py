"""Masking of citizens' personal data (shared/privacy.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.privacy import (
    Contact,
    caller_digest,
    contact_of,
    mask_name,
    mask_personal,
    normalise_phone,
    redact_known,
)

TICKET: dict[str, Any] = {
    "text": "请回电13812345678，谢谢",
    "town": "贾镇",
    "citizen": {"name": "张三丰", "phone": "+8613812345678"},
    "location": {"lat": 36.4, "lon": 115.4, "address": "幸福路8号"},
}


def test_names_keep_their_first_character() -> None:
    assert [mask_name(n) for n in ("张三", "张三丰", "欧阳娜娜", "李", None, "")] == [
        "张*",
        "张**",
        "欧***",
        "李*",
        None,
        "",
    ]


def test_a_ticket_is_masked_throughout() -> None:
    masked = mask_personal({"ticket": TICKET, "department": {"name": "冠县水务集团"}})
    assert masked["ticket"]["citizen"] == {"name": "张**", "phone": "861****5678"}
    assert masked["ticket"]["location"]["address"] == "***"
    assert masked["ticket"]["text"] == "请回电138****5678，谢谢"
    assert masked["ticket"]["town"] == "贾镇"
    assert masked["department"]["name"] == "冠县水务集团", "a department's name is not a person's"
    assert TICKET["citizen"]["name"] == "张三丰", "the original is left as it was"


def test_the_contact_of_a_ticket_and_its_masked_form() -> None:
    contact = contact_of(TICKET)
    assert contact == Contact(
        name="张三丰", phone="+8613812345678", town="贾镇", address="幸福路8号"
    )
    assert contact.masked() == Contact(name="张**", phone="861****5678", town="贾镇", address="***")
    assert contact_of(None) == Contact()


def test_known_values_are_masked_in_free_text() -> None:
    contact = Contact(name="张三丰", phone="13812345678", town="贾镇", address="幸福路8号")
    notice = {"text": "联系人张三丰，电话13812345678，地址幸福路8号", "n": 1}
    assert redact_known(notice, contact) == {"text": "联系人张**，电话138****5678，地址***", "n": 1}


def test_a_caller_is_found_by_any_form_of_the_number() -> None:
    forms = ("13812345678", "+86 138-1234-5678", "8613812345678")
    assert {normalise_phone(f) for f in forms} == {"13812345678"}
    assert len({caller_digest(f) for f in forms}) == 1
    assert caller_digest("13812345678") != caller_digest("13812345679")
    assert caller_digest(None) is None and "13812345678" not in str(caller_digest(forms[0]))


# Words around the number, without digits (digits next to it make another number).
WORDS = st.text(st.characters(categories=["L", "P", "Zs"]), max_size=30)


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), WORDS)
def test_no_mobile_number_survives_masking(phone: str, words: str) -> None:
    masked = mask_personal({"text": f"{words}{phone}{words}", "citizen": {"phone": phone}})
    assert phone not in str(masked)
