"""Push: copy every finished scan of a sensor's store that the central store has not got yet.

Each scan goes over in one transaction on the central side, keyed by the scan's ``uid`` (its natural
key), and is then marked pushed in the sensor's store. So:

- pushing twice changes nothing (the second push finds every scan marked, and a scan the central store
  already holds with the same status is left alone even when the mark was lost);
- a push killed or cut off part-way leaves the central store with whole scans only (the open transaction
  is rolled back), and the next push sends what is missing;
- a sensor that cannot reach the central store keeps scanning into its own store and catches up later.

Scans still running are left for a later push; a scan pushed as ``incomplete`` and finished since
(``scan --resume``) is pushed again and replaces its earlier copy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from scanner.errors import StoreError
from scanner.pgstore import is_pg_url, target_key
from scanner.store import Store

log = logging.getLogger("camsweep.push")
RETRIES = 5  # a deadlock or serialization failure between sensors is retried


@dataclass
class PushResult:
    target: str
    pushed: list[int] = field(default_factory=list)     # local scan ids sent
    already: list[int] = field(default_factory=list)    # local scan ids the central store held already
    waiting: list[int] = field(default_factory=list)    # still running: for a later push
    failed: list[int] = field(default_factory=list)     # not sent (the connection failed): for a later push
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "pushed": self.pushed, "already": self.already, "waiting": self.waiting,
                "failed": self.failed, "error": self.error}


def push_key(central: Store, target: str) -> str:
    return target_key(target) if is_pg_url(target) else f"sqlite:{central.path}"


def _retryable(exc: BaseException) -> bool:
    import psycopg.errors as pe

    return isinstance(exc, pe.DeadlockDetected | pe.SerializationFailure | pe.UniqueViolation)


def push(local: Store, central: Store, target: str) -> PushResult:
    """Send ``local``'s unpushed finished scans to ``central`` (opened on ``target``), oldest first."""
    key = push_key(central, target)
    result = PushResult(target=central.path)
    done = local.pushed(key)
    todo = []
    for s in local.scans():
        uid = local.scan_uid(s.id)
        if s.status == "running":
            result.waiting.append(s.id)
        elif uid and done.get(uid) != s.status:
            todo.append((s.id, uid, s.status))
    for n, (sid, uid, status) in enumerate(todo):
        bundle = local.export_scan(sid)
        for attempt in range(RETRIES):
            try:
                central_id, sent = central.import_scan(bundle)
                break
            except Exception as exc:
                if _retryable(exc) and attempt + 1 < RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                result.failed.extend(t[0] for t in todo[n:])
                result.error = _describe(exc)
                log.error("push stopped at scan %s: %s; %d scans wait for the next push", sid, result.error,
                          len(todo) - n)
                return result
        local.mark_pushed(uid, key, status, central_id)
        (result.pushed if sent else result.already).append(sid)
        log.info("scan %s %s as central scan %s (%d devices)", sid, "pushed" if sent else "already held",
                 central_id, len(bundle["rows"]))
    return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return str(exc)
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
