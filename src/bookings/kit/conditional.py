"""Entity tags and the conditional headers that compare them (RFC 9110 §8.8.3, §13.1).

A resource's entity tag is its version, strong: ``"3"``. ``If-Match`` compares strongly (a weak tag, ``W/"3"``,
never matches); ``If-None-Match`` weakly. ``*`` matches any current representation.
"""

from __future__ import annotations

import re

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, in a comma-separated list (RFC 9110 §8.8.3 and §5.6.1).
_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """``(weak, opaque tag)`` of each entity tag in a list, or ``None`` when the header is not a list of them."""
    tags, position = [], 0
    header = header.strip()
    while position < len(header):
        match = _TAG.match(header, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


def if_match(header: str, current: str) -> bool:
    """Whether ``If-Match: header`` holds for the current strong tag (an unparsable header does not)."""
    if header.strip() == "*":
        return True
    return any(not weak and tag == current for weak, tag in _tags(header) or ())


def if_none_match(header: str, current: str) -> bool:
    """Whether ``If-None-Match: header`` holds, i.e. the client's copy is not the current one (weak comparison)."""
    if header.strip() == "*":
        return False
    return all(tag != current for _weak, tag in _tags(header) or ())
