"""Refusing webhook URLs that point inside our own network (SSRF), unless explicitly allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from bookings.errors import InvalidInput

RESOLVE_TIMEOUT_SECONDS = 3.0


def _is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Raise ``InvalidInput`` if ``url``'s host is, or resolves to, a private, loopback or link-local address."""
    if allow_private:
        return
    host = urlsplit(url).hostname
    if not host:
        raise InvalidInput.on("url", "The URL has no host.", "webhook_url_invalid")
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: a label IDNA cannot encode
        raise InvalidInput.on("url", "The URL's host does not resolve.", "webhook_host_unresolvable") from exc
    if any(_is_internal(str(info[4][0])) for info in infos):
        raise InvalidInput.on(
            "url", "The URL points to a private, loopback or link-local address.", "webhook_url_not_public"
        )
