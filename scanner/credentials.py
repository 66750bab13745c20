"""Device credentials, used only when the user gives them; never guessed, never stored, never logged.

Sources (docs/contracts.md):

* ``--credentials FILE``: INI, section ``[default]`` or ``[<ip or cidr>]``, keys ``username`` and ``password``.
  The most specific section that holds a host wins (a single address, then the longest prefix, then default).
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
from typing import NamedTuple

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


class CredentialSet:
    """Credentials by host: exact address, longest matching prefix, then the default."""

    def __init__(self, default: Credentials | None = None,
                 by_network: Mapping[Network, Credentials] | None = None, source: str = "") -> None:
        self.default = default
        # most specific first
        self._nets = sorted((by_network or {}).items(), key=lambda kv: (-kv[0].prefixlen, str(kv[0])))
        self.source = source

    def __bool__(self) -> bool:
        return self.default is not None or bool(self._nets)

    def __len__(self) -> int:
        return len(self._nets) + (1 if self.default else 0)

    def __repr__(self) -> str:
        return f"CredentialSet({len(self)} entries from {self.source or 'nowhere'})"

    def for_host(self, host: str) -> Credentials | None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return self.default
        for net, cred in self._nets:
            if ip.version == net.version and ip in net:
                return cred
        return self.default

    __call__ = for_host


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
    for section in cp.sections():
        items = cp[section]
        user = (items.get("username") or items.get("user") or "").strip()
        password = items.get("password")
        if not user:
            raise CredentialError(f"{source}: section [{section}] has no username")
        if password is None:
            raise CredentialError(f"{source}: section [{section}] has no password")
        cred = Credentials(user, password)
        if section.strip().lower() == "default":
            default = cred
            continue
        try:
            net = ipaddress.ip_network(section.strip(), strict=False)
        except ValueError:
            raise CredentialError(f"{source}: section [{section[:60]}] is neither 'default' nor an address "
                                  "or CIDR block") from None
        nets[net] = cred
    if default is None and not nets:
        raise CredentialError(f"{source} holds no credentials (expected [default] or [<ip or cidr>] sections "
                              "with username and password)")
    return CredentialSet(default, nets, source)


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
