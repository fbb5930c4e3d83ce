"""The egress policy: which hosts and addresses the service may call on a tenant's behalf.

Every outbound request made for a tenant (external model endpoints today, webhooks later) goes
through one :class:`EgressPolicy`, built once from the operator's settings in the composition
root and passed down as a value. The policy is checked twice:

- **statically**, when a tenant saves a URL (:meth:`EgressPolicy.check_url`): the scheme, the
  host name (``localhost``, cloud metadata names) and, where the host is an address literal in
  any spelling (``2130706433``, ``127.1``, ``0x7f.0.0.1``, ``[::ffff:127.0.0.1]``), the address;
- **at connect time** (:meth:`EgressPolicy.vetted_addresses`): the host is resolved by the
  policy's own resolver, *every* address it resolves to is checked, and the caller connects only
  to those vetted addresses. A name that resolves to a public address when it is saved and to
  ``127.0.0.1`` when it is called (DNS rebinding) is refused, as is a name that resolves to both.

Denied by default: loopback, link-local (``169.254.169.254`` included), private, shared address
space (``100.64.0.0/10``), multicast, unspecified (``0.0.0.0``, ``::``), reserved and every
other non-global range, the same addresses embedded in IPv6 (IPv4-mapped, IPv4-compatible,
6to4, NAT64), and cloud metadata names. The operator's allow-list (hosts, ``.suffix`` patterns
and CIDRs; never per tenant) admits private model servers.

The module is pure Python: it opens no connection itself, and the resolver is injectable so
tests can script DNS answers.

Examples
--------
>>> policy = EgressPolicy.from_entries(["10.1.0.0/16", "models.internal"])
>>> policy.check_url("https://10.1.2.3/score")
>>> policy.check_url("http://2130706433/")
Traceback (most recent call last):
...
mlworker.egress.EgressDenied: 2130706433 (127.0.0.1) is a loopback address
>>> parse_address_literal("0x7f.1"), parse_address_literal("[::1]")
(IPv4Address('127.0.0.1'), IPv6Address('::1'))
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``resolver(host, port)`` → the addresses ``host`` resolves to (strings or addresses).
Resolver = Callable[[str, int], Sequence[str | Address]]

#: Names of cloud instance-metadata services (they answer with credentials and secrets).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


class EgressDenied(ValueError):
    """The policy refuses this URL, host or address; the message says why (for operators)."""


class EgressUnresolvable(OSError):
    """The host resolves to no address."""


def normalise_host(host: str) -> str:
    """Lower-case ``host``, drop IPv6 brackets and trailing dots, IDNA-encode non-ASCII names.

    Examples
    --------
    >>> normalise_host("[::1]"), normalise_host("LocalHost."), normalise_host("１２７.０.０.１")
    ('::1', 'localhost', '127.0.0.1')
    """
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # not a valid name: it will not resolve either
    return host.lower().rstrip(".")


def parse_address_literal(host: str) -> Address | None:
    """Return the address ``host`` spells, in any form a resolver would accept, else ``None``.

    IPv4 follows ``inet_aton``: one to four parts, each decimal, octal (leading ``0``) or hex
    (``0x``), the last part filling the remaining bytes (``2130706433``, ``127.1``,
    ``0177.0.0.1``). IPv6 may be bracketed and carry a zone (``fe80::1%eth0``).

    Examples
    --------
    >>> parse_address_literal("2130706433"), parse_address_literal("0177.0.0.1")
    (IPv4Address('127.0.0.1'), IPv4Address('127.0.0.1'))
    >>> parse_address_literal("models.example.com") is None
    True
    """
    host = normalise_host(host)
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    *leading, last = [_ipv4_number(part) for part in parts]
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8 if part.startswith("0") else 10)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64).

    Examples
    --------
    >>> embedded_ipv4(ipaddress.ip_address("::ffff:169.254.169.254"))
    IPv4Address('169.254.169.254')
    >>> embedded_ipv4(ipaddress.ip_address("2001:db8::1")) is None
    True
    """
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_denial(address: Address) -> str | None:
    """Why ``address`` is denied by default (``"loopback"``, ``"private"``, …), else ``None``.

    Examples
    --------
    >>> [address_denial(ipaddress.ip_address(a)) for a in ("169.254.169.254", "8.8.8.8")]
    ['link-local', None]
    >>> address_denial(ipaddress.ip_address("::ffff:10.0.0.1"))
    'private'
    """
    embedded = embedded_ipv4(address)
    if embedded is not None:
        return address_denial(embedded)
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_unspecified, "unspecified"),
        (address.is_multicast, "multicast"),
        (address in _SHARED_ADDRESS_SPACE, "shared-address-space"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "non-global"),
    )
    return next((name for denied, name in checks if denied), None)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system (``getaddrinfo``), TCP addresses only.

    Raises
    ------
    EgressUnresolvable
        The name does not resolve.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressUnresolvable(f"{host!r} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _matches(host: str, patterns: Iterable[str]) -> bool:
    """``host`` equals a pattern, or ends with a ``.suffix`` pattern."""
    return any(
        host.endswith(pattern) if pattern.startswith(".") else host == pattern
        for pattern in patterns
    )


def _host_entry(entry: str) -> str:
    suffix = entry.strip().startswith(".")
    host = normalise_host(entry)
    if not host or not re.fullmatch(r"[a-z0-9_.\-]+", host):
        raise ValueError(f"egress allow-list entry {entry!r} is not a host name, suffix or CIDR")
    return f".{host.lstrip('.')}" if suffix else host


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's egress rules; the default instance denies every internal target.

    Parameters
    ----------
    allow_networks
        Address ranges the operator allows (private model servers).
    allow_hosts
        Host names (exact, or ``.suffix``) the operator allows: whatever they resolve to.
    aws_credential_hosts
        Hosts (exact, or ``.suffix``) a tenant's SigV4 request may be signed for with the
        server's own AWS credentials when the model config carries no keys.
    resolver
        How names are resolved at connect time (the system resolver unless a test scripts one).
    """

    allow_networks: tuple[Network, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    aws_credential_hosts: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)

    @classmethod
    def from_entries(
        cls,
        allow: Iterable[str] = (),
        *,
        aws_credential_hosts: Iterable[str] = (),
        resolver: Resolver = system_resolver,
    ) -> EgressPolicy:
        """Build a policy from setting strings: CIDRs or addresses, host names, ``.suffix``.

        Raises
        ------
        ValueError
            An entry is neither a network nor a host name.
        """
        networks: list[Network] = []
        hosts: list[str] = []
        for entry in filter(None, (item.strip() for item in allow)):
            try:
                networks.append(ipaddress.ip_network(normalise_host(entry), strict=False))
            except ValueError:
                hosts.append(_host_entry(entry))
        credential_hosts = tuple(
            _host_entry(entry) for entry in aws_credential_hosts if entry.strip()
        )
        return cls(tuple(networks), tuple(hosts), credential_hosts, resolver)

    # --- static checks ----------------------------------------------------------------------
    def check_url(self, url: str) -> None:
        """Refuse a URL whose scheme, host name or literal address the policy denies.

        Names are not resolved here (that happens at connect time, every time).

        Raises
        ------
        EgressDenied
            Why the URL is refused.
        """
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https"):
            raise EgressDenied(f"scheme {parts.scheme!r} is not http or https")
        if not parts.hostname:
            raise EgressDenied("the URL has no host")
        self.check_host(parts.hostname)

    def check_host(self, host: str) -> Address | None:
        """Check a host by name or literal address; return the address when it is a literal.

        Raises
        ------
        EgressDenied
            The name is a metadata or loopback name, or the literal address is denied.
        """
        name = normalise_host(host)
        literal = parse_address_literal(name)
        if literal is not None:
            self._check_address(literal, name)
            return literal
        if _matches(name, self.allow_hosts):
            return None
        if name in METADATA_HOSTS:
            raise EgressDenied(f"{name} is a cloud metadata service")
        if name == "localhost" or name.endswith(".localhost"):
            raise EgressDenied(f"{name} is a loopback name")
        return None

    # --- connect time -------------------------------------------------------------------------
    def vetted_addresses(self, host: str, port: int) -> list[Address]:
        """Resolve ``host`` and return its addresses if the policy allows every one of them.

        Connect only to the addresses returned: resolving again would reopen the window a
        rebinding name needs.

        Raises
        ------
        EgressDenied
            The name, or any address it resolves to, is denied.
        EgressUnresolvable
            The name resolves to nothing.
        """
        literal = self.check_host(host)
        if literal is not None:
            return [literal]
        name = normalise_host(host)
        addresses: list[Address] = []
        for found in self.resolver(name, port):
            try:
                address = ipaddress.ip_address(str(found).split("%")[0])
            except ValueError as exc:
                raise EgressDenied(f"{name} resolved to {found!r}, not an address") from exc
            self._check_address(address, name)
            addresses.append(address)
        if not addresses:
            raise EgressUnresolvable(f"{name!r} resolves to no address")
        return addresses

    def may_use_server_credentials(self, host: str) -> bool:
        """Whether a request to ``host`` may be signed with the server's own AWS credentials.

        Examples
        --------
        >>> policy = EgressPolicy.from_entries(
        ...     aws_credential_hosts=[".sagemaker.amazonaws.com"])
        >>> policy.may_use_server_credentials("runtime.sagemaker.us-east-1.amazonaws.com")
        False
        >>> policy.may_use_server_credentials("runtime.sagemaker.amazonaws.com")
        True
        >>> EgressPolicy().may_use_server_credentials("runtime.sagemaker.amazonaws.com")
        False
        """
        return _matches(normalise_host(host), self.aws_credential_hosts)

    def _check_address(self, address: Address, name: str) -> None:
        if _matches(name, self.allow_hosts) or any(
            address in network or (embedded_ipv4(address) or address) in network
            for network in self.allow_networks
        ):
            return
        reason = address_denial(address)
        if reason is not None:
            shown = str(address) if str(address) == name else f"{name} ({address})"
            article = "an" if reason[0] in "aeiou" else "a"
            raise EgressDenied(f"{shown} is {article} {reason} address")


__all__ = [
    "METADATA_HOSTS",
    "Address",
    "EgressDenied",
    "EgressPolicy",
    "EgressUnresolvable",
    "Resolver",
    "address_denial",
    "embedded_ipv4",
    "normalise_host",
    "parse_address_literal",
    "system_resolver",
]
