"""Phone numbers never reach a log line in full.

Citizens' mobile numbers (11 digits starting 13-19, optionally +86/86) are
masked to their first three and last four digits, the form call-centre staff are
used to (138****5678). The filter sits on the root handlers, so it covers every
logger of every service, including third-party ones.
"""

from __future__ import annotations

import logging
import re

MOBILE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_phones(text: str) -> str:
    return MOBILE.sub(r"\1****\2", text)


def mask_phone(phone: str | None) -> str:
    """One number for a log line: masked whatever its form."""
    if not phone:
        return "-"
    digits = re.sub(r"\D", "", phone)
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


class PhoneMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        return True


def install_phone_masking(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of the logger (the root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, PhoneMaskingFilter) for f in handler.filters):
            handler.addFilter(PhoneMaskingFilter())
