"""Responders: one module per protocol, answering as the device a :class:`DeviceSpec` describes.

:func:`open_sockets` makes a device's sockets (call it while inside the device's network namespace:
a socket stays in the namespace it was made in); :func:`serve` then runs them on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from dataclasses import dataclass
from typing import Any

from scanner.lab.responders import banners, chatter, dhip, dvrip, http, mdns, rtsp, sadp, snmp, ssdp, wsd
from scanner.lab.responders.base import Device, Handler, start_tcp
from scanner.lab.responders.udp import Responder

# service name -> (real port, handler, tls)
TCP_SERVICES: dict[str, tuple[int, str, bool]] = {
    "http": (80, "http", False),
    "http_alt": (8080, "http", False),  # a web server moved to 8080 (profiles.EXTRA_KEYS)
    "nas_web": (5000, "http", False),
    "https": (443, "http", True),
    "ipp": (631, "http", False),
    "rtsp": (554, "rtsp", False),
    "hik_sdk": (8000, "hik_sdk", False),
    "dahua_sdk": (37777, "dahua_sdk", False),
    "telnet": (23, "telnet", False),
    "ssh": (22, "ssh", False),
    "jetdirect": (9100, "jetdirect", False),
    "smb": (445, "smb", False),
    "dvrip": (34567, "dvrip", False),
}
UDP_SERVICES: dict[str, Any] = {"wsd": wsd, "ssdp": ssdp, "mdns": mdns, "sadp": sadp, "dhip": dhip,
                                 # snmp_private: a non-public community; snmp_v3: SNMPv3 only (USM)
                                 "snmp": snmp, "snmp_private": snmp, "snmp_v3": snmp}
_BACKLOG = 128


@dataclass
class OpenSocket:
    service: str
    sock: socket.socket
    multicast: bool = False  # a socket bound to the group address (netns mode)


def _handler(dev: Device, name: str, port: int, use_tls: bool) -> Handler:
    if name == "http":
        state: dict = {}
        return functools.partial(_http, tls=use_tls, port=port, state=state)
    return {
        "rtsp": rtsp.handle, "hik_sdk": banners.hik_sdk, "dahua_sdk": banners.dahua_sdk,
        "telnet": banners.telnet, "ssh": banners.ssh, "jetdirect": banners.jetdirect, "smb": banners.smb,
        "dvrip": dvrip.handle,
    }[name]


async def _http(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls: bool, port: int,
                state: dict) -> None:
    await http.handle(dev, reader, writer, tls=tls, port=port, state=state)


def udp_services(dev: Device) -> list[str]:
    out = [s for s in dev.spec.services if s in UDP_SERVICES]
    if dev.spec.hostile_kind == "xmlbomb" and "wsd" not in out:
        out.append("wsd")
    return out


def open_sockets(dev: Device) -> list[OpenSocket]:
    """Bind every socket the device needs (synchronously, in the current network namespace).

    On failure, closes what it opened and raises OSError with the address in the message.
    """
    opened: list[OpenSocket] = []
    try:
        for service in dev.spec.services:
            if service not in TCP_SERVICES:
                continue
            real = TCP_SERVICES[service][0]
            port = dev.port(real)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            opened.append(OpenSocket(service, s))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _bind(s, dev.ip, port, "tcp")
            s.listen(_BACKLOG)
            s.setblocking(False)
        for service in udp_services(dev):
            mod = UDP_SERVICES[service]
            port = dev.port(mod.PORT)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            opened.append(OpenSocket(service, s))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _bind(s, dev.ip, port, "udp")
            if dev.netns is not None:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(dev.ip))
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255 if service == "mdns" else 1)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            s.setblocking(False)
            if dev.netns is not None and mod.GROUP:  # multicast only inside a device namespace
                m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                opened.append(OpenSocket(service, m, multicast=True))
                m.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                _bind(m, mod.GROUP, port, "udp")
                mreq = socket.inet_aton(mod.GROUP) + socket.inet_aton(dev.ip)
                m.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                m.setblocking(False)
        if dev.netns is not None and dev.chatter > 0:
            for role, sock in chatter.open_chatter_sockets(dev, dev.iface):
                opened.append(OpenSocket(f"chatter_{role}", sock))
    except OSError:
        for o in opened:
            o.sock.close()
        raise
    return opened


def _bind(s: socket.socket, ip: str, port: int, proto: str) -> None:
    try:
        s.bind((ip, port))
    except OSError as e:
        raise OSError(e.errno, f"cannot bind {proto} {ip}:{port}: {e.strerror}") from None
    except OverflowError:
        raise OSError(22, f"cannot bind {proto} {ip}:{port}: port out of range") from None


def real_ports(dev: Device) -> list[int]:
    """Every port the device serves (before any loopback port mapping)."""
    ports = [TCP_SERVICES[s][0] for s in dev.spec.services if s in TCP_SERVICES]
    return ports + [UDP_SERVICES[s].PORT for s in udp_services(dev)]


async def serve(dev: Device, opened: list[OpenSocket]) -> list[Any]:
    """Start serving a device's sockets; returns the servers and transports (each has .close())."""
    loop = asyncio.get_running_loop()
    running: list[Any] = []
    unicast: dict[str, Responder] = {}
    for o in opened:
        if o.service in TCP_SERVICES:
            real, name, use_tls = TCP_SERVICES[o.service]
            handler = _handler(dev, name, real, use_tls)
            if use_tls:
                from scanner.lab.responders import tls  # cryptography is slow to import: only when needed

                ctx = tls.server_context(dev)
                srv = await asyncio.start_server(
                    lambda r, w, h=handler: _run(dev, h, r, w), sock=o.sock, ssl=ctx,
                    ssl_handshake_timeout=10.0)
            else:
                srv = await start_tcp(dev, o.sock, handler)
            running.append(srv)
    for o in opened:  # unicast first, so the multicast responder can reply through it
        if o.service == "snmp_v3":
            running.append(snmp.V3Agent(dev, o.sock))
            continue
        if o.service in UDP_SERVICES and not o.multicast:
            mod = UDP_SERVICES[o.service]
            _, proto = await loop.create_datagram_endpoint(
                lambda mod=mod: Responder(dev, mod.answer, multicast=False), sock=o.sock)
            unicast[o.service] = proto
            running.append(proto)
    for o in opened:
        if o.service.startswith("chatter_"):
            _, proto = await loop.create_datagram_endpoint(
                lambda: Responder(dev, lambda *a: None, multicast=False), sock=o.sock)
            unicast[o.service.removeprefix("chatter_")] = proto
            running.append(proto)
    for o in opened:
        if o.service in UDP_SERVICES and o.multicast:
            mod = UDP_SERVICES[o.service]
            _, proto = await loop.create_datagram_endpoint(
                lambda mod=mod, svc=o.service: Responder(dev, mod.answer, multicast=True, reply=unicast.get(svc)),
                sock=o.sock)
            running.append(proto)
    if dev.netns is not None and dev.chatter > 0:
        running.append(_Task(asyncio.ensure_future(chatter.run(dev, dev.chatter, dict(unicast)))))
    return running


class _Task:
    """A background task with the .close() the service calls on everything it runs."""

    def __init__(self, task: asyncio.Future) -> None:
        self.task = task

    def close(self) -> None:
        self.task.cancel()


_TLS_STATE: dict[str, int] = {}


async def _run(dev: Device, handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    from scanner.lab.responders.base import run_connection

    try:
        await run_connection(dev, handler, reader, writer, state=_TLS_STATE)
    except asyncio.CancelledError:  # the service is stopping: end quietly
        writer.transport.abort()


__all__ = ["Device", "OpenSocket", "open_sockets", "serve", "TCP_SERVICES", "UDP_SERVICES"]
