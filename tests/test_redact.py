"""redact.scrub_data looks only for the secrets found somewhere in the document: the same result as scrubbing every
string of it with every registered secret (redact.scrub), whatever the document and the secrets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cancelctl import redact

ALPHABET = "ab<>redact\0"  # small, so that secrets occur in the strings, overlap, span two strings, hold <redacted>
SECRET = st.text(ALPHABET, min_size=redact.MIN_SCRUBBED, max_size=12)
LEAF = st.one_of(st.text(ALPHABET, max_size=40), st.integers(), st.none(), st.booleans())
DOC = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(ALPHABET, max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def every_string_scrubbed(value: object) -> object:
    if isinstance(value, str):
        return redact.scrub(value)
    if isinstance(value, dict):
        return {k: every_string_scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [every_string_scrubbed(v) for v in value]
    return value


@settings(max_examples=100, deadline=None)
@given(doc=DOC, secrets=st.lists(SECRET, min_size=1, max_size=5), planted=st.integers(0, 4))
def test_scrub_data_is_scrub_of_every_string(doc, secrets, planted):
    registry = redact._Secrets()
    registry.update(secrets)
    saved, redact.SECRETS = redact.SECRETS, registry
    try:
        secret = secrets[planted % len(secrets)]
        doc = [doc, {"k": "x" + secret + "y"}]  # one that surely occurs: the comparison below can fail
        scrubbed = redact.scrub_data(doc)
        assert scrubbed == every_string_scrubbed(doc)
        assert scrubbed[1] != doc[1] or secret == redact.REDACTED  # type: ignore[index]  # the planted one went
    finally:
        redact.SECRETS = saved
