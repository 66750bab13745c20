"""Issue 13 item 6: the credentialed ONVIF path (onvif-zeep-async over aiohttp) reads replies under the
same cap as every other HTTP read and never inflates a gzip body without bound. A loopback device
answers GetDeviceInformation with the lab's gzip bomb (256 MiB of zeros in ~250 KiB)."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc

import pytest

from scanner.lab.responders.onvif import BOMB_SIZE, gzip_bomb
from scanner.probes import onvif
from tests.probes.conftest import recording
from tests.probes.test_io import LO, ctx_for, served

pytestmark = pytest.mark.timeout(120)


def _device(reply: bytes, encoding: str | None, *, length: bool = True, seen: list[bytes] | None = None):
    """A device service: GetSystemDateAndTime answered, GetDeviceInformation refused without a
    UsernameToken and answered with ``reply`` (sent with ``encoding``) with one."""

    async def handler(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            n = next((int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                      if ln.lower().startswith(b"content-length")), 0)
            body = await reader.readexactly(n)
            if seen is not None:
                seen.append(body)
            hdrs = [b"Content-Type: application/soap+xml; charset=utf-8", b"Connection: close"]
            if b"GetSystemDateAndTime" in body:
                out, status = recording("onvif/getsystemdateandtime.xml"), b"200 OK"
            elif b"UsernameToken" in body:
                out, status = reply, b"200 OK"
                if encoding:
                    hdrs.append(b"Content-Encoding: " + encoding.encode())
            else:
                out, status = recording("onvif/notauthorized-fault.xml"), b"400 Bad Request"
            if length:
                hdrs.append(b"Content-Length: " + str(len(out)).encode())
            writer.write(b"HTTP/1.1 " + status + b"\r\n" + b"\r\n".join(hdrs) + b"\r\n\r\n")
            for i in range(0, len(out), 65536):
                writer.write(out[i:i + 65536])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handler


async def _credentialed(handler) -> dict:
    async with served(handler) as port:
        ctx = ctx_for(ports={"onvif": (port,)}, timeout=8.0, credentials=lambda h: ("viewer", "pw-123"))
        return await onvif.probe(LO, ctx)


async def test_a_gzip_bomb_on_the_credentialed_path_is_cut_off():
    assert await onvif.prewarm()  # the client's imports and WSDL, outside the measurement
    bomb = gzip_bomb()
    assert len(bomb) < BOMB_SIZE // 500  # a real bomb: ~1000:1
    for length in (True, False):  # with a Content-Length, and read to the close
        tracemalloc.start()
        t = time.monotonic()
        try:
            out = await _credentialed(_device(bomb, "gzip", length=length))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        took = time.monotonic() - t
        o = out["onvif"]
        assert o["auth_required"] is True and "authenticated" not in o  # the bomb gave nothing
        assert "model" not in o and "manufacturer" not in o
        assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"  # inflating it would need 256 MiB
        assert took < 8.0


async def test_an_oversized_plain_reply_is_cut_off():
    info = recording("onvif/hikvision-getdeviceinformation.xml")
    padded = info.replace(b"</env:Envelope>", b"<!--" + b"x" * (onvif.MAX_SOAP + 10) + b"--></env:Envelope>")
    assert padded != info
    out = await _credentialed(_device(padded, None))
    assert "authenticated" not in out["onvif"]


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
async def test_ordinary_replies_still_read_through_the_capped_transport(encoding):
    info = recording("onvif/hikvision-getdeviceinformation.xml")
    if encoding == "gzip":
        body = gzip.compress(info)
    elif encoding == "deflate":
        import zlib

        body = zlib.compress(info)
    else:
        body = info
    seen: list[bytes] = []
    out = await _credentialed(_device(body, encoding, seen=seen))
    o = out["onvif"]
    assert o["authenticated"] is True and o["model"] == "DS-2DF7286-A"
    assert "pw-123" not in repr(out) and any(b"UsernameToken" in b for b in seen)
