"""Text from outside (venue reasons and messages, order fields) made safe to print: one line, no control
characters, bounded.

A venue is not trusted to send sane text: a reason with a newline or a tab
would forge extra rows in the tab-separated output, an escape sequence
would reach the terminal, a megabyte of reason would flood the screen and
the audit log. Imports nothing of cancelctl (a leaf).
"""

from __future__ import annotations

import unicodedata

VENUE_TEXT_LIMIT = 300  # characters of a venue's reason or message kept (the rest is cut, marked "…")
MESSAGE_LIMIT = 1000  # characters of one error line's message


def one_line(text: object, limit: int = VENUE_TEXT_LIMIT) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    Every control or format character (C0 and C1 controls, DEL, ESC,
    newlines, tabs, bidirectional overrides, zero-width characters: Unicode
    categories Cc, Cf, Zl, Zp and Cs) becomes a space, runs of white space
    become one space, and a longer text is cut with "…".
    """
    s = text if isinstance(text, str) else str(text)
    if len(s) > 4 * limit:  # never walk a megabyte
        s = s[: 4 * limit]
    s = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") else c for c in s)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"
