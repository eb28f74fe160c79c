"""Refusing webhook URLs that point inside our own network (SSRF), unless explicitly allowed.

A name is checked when an endpoint is registered and again before every delivery, and the delivery then connects
to the very address that passed the check (``pinned_address``): a DNS answer that changes between the check and
the connection (DNS rebinding) cannot send a delivery inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from bookings.errors import InvalidInput

RESOLVE_TIMEOUT_SECONDS = 3.0

# host -> its addresses, in the resolver's order of preference
Resolver = Callable[[str], Awaitable[list[str]]]


async def system_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def pinned_address(url: str, *, allow_private: bool, resolve: Resolver = system_resolver) -> str:
    """The address to connect to for ``url``: its host's first address, once every address has passed the check.

    Raises ``InvalidInput`` if the host is missing, does not resolve, or (unless ``allow_private``) any of its
    addresses is private, loopback or link-local.
    """
    host = urlsplit(url).hostname
    if not host:
        raise InvalidInput.on("url", "The URL has no host.", "webhook_url_invalid")
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            addresses = await resolve(host)
    except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: a label IDNA cannot encode
        raise InvalidInput.on("url", "The URL's host does not resolve.", "webhook_host_unresolvable") from exc
    if not addresses:
        raise InvalidInput.on("url", "The URL's host does not resolve.", "webhook_host_unresolvable")
    if not allow_private and any(_is_internal(address) for address in addresses):
        raise InvalidInput.on(
            "url", "The URL points to a private, loopback or link-local address.", "webhook_url_not_public"
        )
    return addresses[0]


async def check_destination(url: str, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
    """Raise ``InvalidInput`` if ``url`` may not receive webhooks (see ``pinned_address``)."""
    if allow_private:
        return  # registration need not resolve a name that only exists where the deliveries are sent from
    await pinned_address(url, allow_private=allow_private, resolve=resolve)
