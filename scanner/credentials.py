"""Device credentials, used only when the user gives them; never guessed, never stored, never logged.

Sources (docs/contracts.md):

* ``--credentials FILE``: INI, section ``[default]`` or ``[<ip or cidr>]``, keys ``username`` and ``password``.
  The most specific section that holds a host wins (a single address, then the longest prefix, then default).
  SNMP (read-only queries only): ``community`` (several: one a line, or separated by commas) and the SNMPv3
  user ``snmp_user``, ``snmp_auth_protocol`` (md5, sha, sha224, sha256, sha384, sha512; default sha),
  ``snmp_auth_key``, ``snmp_priv_protocol`` (des, aes, aes192, aes256; default aes), ``snmp_priv_key``, in
  an ``[snmp]`` section (every host) or in the per-host sections (which need no username then).
* the environment: ``CAMSWEEP_USERNAME`` / ``CAMSWEEP_PASSWORD`` (a default for every host).
* ``--credentials keyring:<name>``: the system keyring, service ``camsweep``, user ``<name>``.

A :class:`Credentials` is a ``(username, password)`` tuple whose ``repr`` and ``str`` hide the password,
so it cannot leak into a traceback, a log line or the store by accident.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from scanner.errors import CredentialError

MAX_FILE_BYTES = 256 * 1024
MAX_SECTIONS = 4096
KEYRING_SERVICE = "camsweep"
ENV_USER = "CAMSWEEP_USERNAME"
ENV_PASSWORD = "CAMSWEEP_PASSWORD"


class Credentials(NamedTuple):
    """A user name and password for one device or a group of them. Its repr hides the password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    __str__ = __repr__


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SNMP_AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
SNMP_PRIV_PROTOCOLS = ("des", "aes", "aes192", "aes256")
MAX_COMMUNITIES = 8
_SNMP_KEYS = ("community", "communities", "snmp_user", "snmp_auth_protocol", "snmp_auth_key",
              "snmp_priv_protocol", "snmp_priv_key")


class SnmpUser(NamedTuple):
    """An SNMPv3 user (USM). ``auth_key``/``priv_key`` empty: noAuthNoPriv / authNoPriv. Its repr hides the keys."""

    name: str
    auth_protocol: str = "sha"
    auth_key: str = ""
    priv_protocol: str = "aes"
    priv_key: str = ""

    def __repr__(self) -> str:
        return f"SnmpUser(name={self.name!r}, auth={self.auth_protocol if self.auth_key else 'none'}, " \
               f"priv={self.priv_protocol if self.priv_key else 'none'})"

    __str__ = __repr__


class SnmpAuth(NamedTuple):
    """What SNMP may use on one host: v2c communities (in order) and v3 users. Its repr hides the secrets."""

    communities: tuple[str, ...] = ()
    users: tuple[SnmpUser, ...] = ()

    def __repr__(self) -> str:
        return f"SnmpAuth({len(self.communities)} communities, {len(self.users)} v3 users)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.communities or self.users)


class CredentialSet:
    """Credentials by host: exact address, longest matching prefix, then the default."""

    def __init__(self, default: Credentials | None = None,
                 by_network: Mapping[Network, Credentials] | None = None, source: str = "", *,
                 snmp_default: SnmpAuth | None = None, snmp_by_network: Mapping[Network, SnmpAuth] | None = None
                 ) -> None:
        self.default = default
        # most specific first
        self._nets = sorted((by_network or {}).items(), key=lambda kv: (-kv[0].prefixlen, str(kv[0])))
        self.source = source
        self.snmp_default = snmp_default or SnmpAuth()
        self._snmp_nets = sorted((snmp_by_network or {}).items(), key=lambda kv: (-kv[0].prefixlen, str(kv[0])))
        # single-host sections (a /32 or /128 is the most specific there is): found by address, not by a scan
        # of every section (a file with a section per device made each lookup a walk over all of them)
        self._hosts, self._wider = _split_hosts(self._nets)
        self._snmp_hosts, self._snmp_wider = _split_hosts(self._snmp_nets)

    def __bool__(self) -> bool:
        return self.default is not None or bool(self._nets) or self.has_snmp()

    def has_snmp(self) -> bool:
        return bool(self.snmp_default) or bool(self._snmp_nets)

    def snmp_for(self, host: str) -> SnmpAuth:
        """The SNMP communities and v3 users for ``host``: the most specific section's first, then the
        ``[snmp]``/``[default]`` ones (duplicates dropped; at most MAX_COMMUNITIES communities)."""
        found: list[SnmpAuth] = []
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            hit = self._snmp_hosts.get(ip)
            if hit is None:
                hit = next((auth for net, auth in self._snmp_wider if ip.version == net.version and ip in net), None)
            if hit is not None:
                found.append(hit)
        found.append(self.snmp_default)
        comms: list[str] = []
        users: list[SnmpUser] = []
        for auth in found:
            comms += [c for c in auth.communities if c not in comms]
            users += [u for u in auth.users if u not in users]
        return SnmpAuth(tuple(comms[:MAX_COMMUNITIES]), tuple(users[:4]))

    def __len__(self) -> int:
        return len(self._nets) + (1 if self.default else 0)

    def __repr__(self) -> str:
        return f"CredentialSet({len(self)} entries from {self.source or 'nowhere'})"

    def for_host(self, host: str) -> Credentials | None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return self.default
        hit = self._hosts.get(ip)
        if hit is not None:
            return hit
        for net, cred in self._wider:
            if ip.version == net.version and ip in net:
                return cred
        return self.default

    __call__ = for_host


def _split_hosts(nets: list[tuple[Network, Any]]) -> tuple[dict[Any, Any], list[tuple[Network, Any]]]:
    """(address -> entry for single-host networks, the wider networks in their order)."""
    hosts: dict[Any, Any] = {}
    wider = []
    for net, entry in nets:
        if net.prefixlen == net.max_prefixlen:
            hosts.setdefault(net.network_address, entry)
        else:
            wider.append((net, entry))
    return hosts, wider


def parse_ini(text: str, source: str = "credentials") -> CredentialSet:
    """Credentials from INI text. Raises CredentialError naming the problem (never the password)."""
    if len(text) > MAX_FILE_BYTES:
        raise CredentialError(f"{source} is larger than {MAX_FILE_BYTES // 1024} KB")
    cp = configparser.ConfigParser(interpolation=None, default_section="\x00none")
    cp.optionxform = str.lower  # type: ignore[assignment,method-assign]
    try:
        cp.read_string(text, source=source)
    except configparser.Error as exc:
        # configparser messages may quote a line, and a line may hold a password: say only where
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise CredentialError(f"{source} is not a valid INI file{where}: {type(exc).__name__}") from None
    if len(cp.sections()) > MAX_SECTIONS:
        raise CredentialError(f"{source} has more than {MAX_SECTIONS} sections")
    default: Credentials | None = None
    nets: dict[Network, Credentials] = {}
    snmp_default = SnmpAuth()
    snmp_nets: dict[Network, SnmpAuth] = {}
    for section in cp.sections():
        items = cp[section]
        name = section.strip().lower()
        snmp = _snmp_auth(items, section, source)
        if name == "snmp":
            if not snmp:
                raise CredentialError(f"{source}: section [{section}] holds no community or snmp_user")
            snmp_default = _join(snmp_default, snmp)
            continue
        user = (items.get("username") or items.get("user") or "").strip()
        password = items.get("password")
        if snmp and not user and password is None:  # an SNMP-only section
            if name == "default":
                snmp_default = _join(snmp_default, snmp)
                continue
            snmp_nets[_section_network(section, source)] = snmp
            continue
        if snmp:
            if name == "default":
                snmp_default = _join(snmp_default, snmp)
            else:
                snmp_nets[_section_network(section, source)] = snmp
        if not user:
            raise CredentialError(f"{source}: section [{section}] has no username")
        if password is None:
            raise CredentialError(f"{source}: section [{section}] has no password")
        cred = Credentials(user, password)
        if name == "default":
            default = cred
            continue
        nets[_section_network(section, source)] = cred
    if default is None and not nets and not snmp_default and not snmp_nets:
        raise CredentialError(f"{source} holds no credentials (expected [default] or [<ip or cidr>] sections "
                              "with username and password, or SNMP communities)")
    return CredentialSet(default, nets, source, snmp_default=snmp_default, snmp_by_network=snmp_nets)


def _section_network(section: str, source: str) -> Network:
    try:
        return ipaddress.ip_network(section.strip(), strict=False)
    except ValueError:
        raise CredentialError(f"{source}: section [{section[:60]}] is neither 'default' nor an address "
                              "or CIDR block (nor 'snmp')") from None


def _join(a: SnmpAuth, b: SnmpAuth) -> SnmpAuth:
    return SnmpAuth(a.communities + tuple(c for c in b.communities if c not in a.communities),
                    a.users + tuple(u for u in b.users if u not in a.users))


def _snmp_auth(items: Mapping[str, str], section: str, source: str) -> SnmpAuth:
    """SNMP keys of one section (errors name the key, never its value)."""
    comms: list[str] = []
    for key in ("community", "communities"):
        raw = items.get(key)
        if raw is None:
            continue
        for part in raw.replace(",", "\n").splitlines():
            c = part.strip()
            if c and c not in comms:
                if len(c) > 255:
                    raise CredentialError(f"{source}: section [{section[:60]}]: a community is longer than 255")
                comms.append(c)
        if not comms:
            raise CredentialError(f"{source}: section [{section[:60]}]: {key} is empty")
    users: list[SnmpUser] = []
    name = (items.get("snmp_user") or "").strip()
    if name:
        auth = (items.get("snmp_auth_protocol") or "sha").strip().lower().replace("-", "")
        priv = (items.get("snmp_priv_protocol") or "aes").strip().lower().replace("-", "").replace("aes128", "aes")
        auth_key = items.get("snmp_auth_key") or ""
        priv_key = items.get("snmp_priv_key") or ""
        if auth not in SNMP_AUTH_PROTOCOLS:
            raise CredentialError(f"{source}: section [{section[:60]}]: snmp_auth_protocol must be one of "
                                  f"{', '.join(SNMP_AUTH_PROTOCOLS)}")
        if priv not in SNMP_PRIV_PROTOCOLS:
            raise CredentialError(f"{source}: section [{section[:60]}]: snmp_priv_protocol must be one of "
                                  f"{', '.join(SNMP_PRIV_PROTOCOLS)}")
        for key, value in (("snmp_auth_key", auth_key), ("snmp_priv_key", priv_key)):
            if value and len(value) < 8:
                raise CredentialError(f"{source}: section [{section[:60]}]: {key} is shorter than 8 characters "
                                      "(RFC 3414)")
        if priv_key and not auth_key:
            raise CredentialError(f"{source}: section [{section[:60]}]: snmp_priv_key needs snmp_auth_key")
        users.append(SnmpUser(name, auth, auth_key, priv, priv_key))
    elif any(items.get(k) for k in ("snmp_auth_key", "snmp_priv_key")):
        raise CredentialError(f"{source}: section [{section[:60]}]: SNMPv3 keys without snmp_user")
    return SnmpAuth(tuple(comms[:MAX_COMMUNITIES]), tuple(users))


def read_file(path: str | Path, *, warn=None) -> CredentialSet:
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise CredentialError(f"{p} is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise CredentialError(f"{p} is larger than {MAX_FILE_BYTES // 1024} KB")
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CredentialError(f"cannot read the credentials file {p}: {exc.strerror or exc}") from None
    if warn is not None and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"the credentials file {p} is readable by other users; consider chmod 600")
    return parse_ini(text, str(p))


def from_env(environ: Mapping[str, str] | None = None) -> CredentialSet:
    env = os.environ if environ is None else environ
    user, password = env.get(ENV_USER, ""), env.get(ENV_PASSWORD)
    if user and password is not None:
        return CredentialSet(Credentials(user, password), source="the environment")
    if user or password:
        raise CredentialError(f"set both {ENV_USER} and {ENV_PASSWORD}, or neither")
    return CredentialSet()


def from_keyring(name: str) -> CredentialSet:
    if not name:
        raise CredentialError("keyring: needs a name, as in --credentials keyring:office")
    try:
        import keyring
        import keyring.errors

        cred = keyring.get_credential(KEYRING_SERVICE, name)
        password = cred.password if cred is not None else None
        user = cred.username if cred is not None and cred.username else name
    except Exception as exc:  # any backend failure (no backend, locked, D-Bus missing)
        raise CredentialError(f"cannot read the keyring ({type(exc).__name__})") from None
    if password is None:
        raise CredentialError(f"no password for {name!r} in the keyring (service {KEYRING_SERVICE!r})")
    return CredentialSet(Credentials(user, password), source=f"keyring:{name}")


def load(spec: str | None, *, environ: Mapping[str, str] | None = None, warn=None) -> CredentialSet:
    """Credentials from ``--credentials`` (a file or ``keyring:NAME``), else the environment, else none.

    With a file, the environment's pair (if any) is the fallback for hosts the file does not cover.
    """
    env = from_env(environ)
    if not spec:
        return env
    if spec.startswith("keyring:"):
        return from_keyring(spec[len("keyring:"):])
    creds = read_file(spec, warn=warn)
    if creds.default is None and env.default is not None:
        creds.default = env.default
    return creds
