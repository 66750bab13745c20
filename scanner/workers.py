"""Worker processes: per-host probing on every core, when a scan has many live hosts and the cores to
spare (``ScanOptions.workers``; :func:`worker_count` decides). The scan's process keeps discovery,
identification and the store; each worker probes the hosts it is handed (ip, discovery fragments, probes
to skip) and sends their fragments back. Workers are spawned, so nothing of the scan's process (a lock, a
thread) is inherited; they stop by themselves if the scan's process is gone.

Also the process's open-file limit (:func:`raise_fd_limit`), which the workers inherit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from scanner.options import ScanOptions
from scanner.pacing import RateLimiter, watch
from scanner.targets import TargetSet

# Automatic worker processes (--workers -1), decided once discovery has counted the live hosts. Measured on
# 2 cores in the 250-device lab: one process probes the whole /24 in 6.9-8.8 s at 167 MB; two workers took
# 9.4-10.4 s and 330 MB (each worker imports the probe stack again and their queues cost CPU). A process
# probing alone runs at ~95% of one core, so workers pay off only with cores to spare and many live hosts.
WORKER_MIN_HOSTS = 1000  # live hosts
WORKER_MIN_CPUS = 4
MAX_WORKERS = 4
FDS_PER_HOST = 16  # sockets one host's probes may hold at once (per_host probes, some with a few connections)


def take_batch(q: Any, n: int) -> list[Any]:
    """Up to ``n`` items of a multiprocessing queue: waits (at most 1 s, else queue.Empty) for the first, then
    takes what is already there, stopping after a ``None`` (the end mark). One executor round trip a batch,
    not an item: on a busy event loop each round trip costs a loop iteration, and hosts handed over one at a
    time started at ~30 a second (measured in the lab)."""
    import queue

    got = [q.get(timeout=1.0)]
    while len(got) < n and got[-1] is not None:
        try:
            got.append(q.get_nowait())
        except queue.Empty:
            break
    return got


def worker_main(jobs: Any, results: Any, recorded: dict[str, Any], credentials: Any, parent: int) -> None:
    """A worker process: probe the hosts that arrive on ``jobs`` (ip, discovery fragments, probes to
    skip), put (ip, fragments) on ``results`` as each host is done; ``None`` ends it. It stops by itself
    if the scan's process is gone (killed), and leaves Ctrl-C to the scan's process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(_worker_loop(jobs, results, recorded, credentials, parent))
    if os.getppid() == parent:
        results.close()
        results.join_thread()  # every result reaches the scan before this worker exits
    else:
        results.cancel_join_thread()  # nobody reads any more: exit without waiting to flush


async def _worker_loop(jobs: Any, results: Any, recorded: dict[str, Any], credentials: Any, parent: int) -> None:
    import queue

    from scanner.probing import ProbeEnv, collect_host, host_probes  # (scanner.probing imports this module)

    o = ScanOptions.from_recorded(recorded)
    o.credentials = credentials
    env = ProbeEnv(o, RateLimiter(o.rate))
    monitor, gate = watch(o.concurrency)
    probes = host_probes(o)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()
    warm = None
    if credentials and "onvif" in probes:  # the ONVIF client's import and WSDL load overlap discovery
        from scanner.probes import onvif

        warm = asyncio.create_task(onvif.prewarm())
        warm.add_done_callback(lambda t: t.cancelled() or t.exception())
    results.put(("__ready__", []))
    main = asyncio.current_task()

    async def watchdog() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        main.cancel()  # type: ignore[union-attr]  # the scan's process is gone: stop probing at once

    dog = asyncio.create_task(watchdog())

    async def one(ip: str, frags: list[dict], skip: tuple[str, ...]) -> None:
        try:
            got = await collect_host(ip, frags, env.context(), {n: f for n, f in probes.items() if n not in skip}, o,
                                     monitor)
        except Exception:
            got = []
        results.put((ip, got))

    slot_free = asyncio.Event()
    finished = False
    while not finished:
        while len(tasks) >= gate.limit:  # the limit follows the loop's lag (scanner.pacing)
            slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot_free.wait(), 0.5)
        try:
            batch = await loop.run_in_executor(None, take_batch, jobs, gate.limit - len(tasks))
        except queue.Empty:
            if os.getppid() != parent:
                return  # the scan's process is gone
            continue
        for job in batch:
            if job is None:
                finished = True
                break
            t = asyncio.create_task(one(*job))
            tasks.add(t)
            t.add_done_callback(lambda t: (tasks.discard(t), slot_free.set()))
    if tasks:
        await asyncio.gather(*tasks)
    if warm is not None:
        warm.cancel()
    dog.cancel()
    await monitor.stop()


class WorkerPool:
    """``n`` worker processes (spawned, so no lock or thread of this process is inherited) that probe
    hosts for the scan; started early so that their imports overlap discovery."""

    def __init__(self, n: int, options: ScanOptions) -> None:
        import multiprocessing

        mp = multiprocessing.get_context("spawn")
        share = ScanOptions.from_recorded(options.recordable())
        share.rate = options.rate / n if options.rate > 0 else 0
        share.concurrency = max(1, -(-options.concurrency // n))
        self.jobs = mp.Queue()
        self.results = mp.Queue()
        self.procs = [mp.Process(target=worker_main, name=f"camsweep-worker-{i}", daemon=True,
                                 args=(self.jobs, self.results, share.recordable(), options.credentials,
                                       os.getpid())) for i in range(n)]
        for p in self.procs:
            p.start()

    def alive(self) -> bool:
        return any(p.is_alive() for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)
        for q in (self.jobs, self.results):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


def worker_count(options: ScanOptions, hosts: TargetSet | int) -> int:
    """How many worker processes a scan of ``hosts`` live hosts (or a TargetSet: its size) uses: the number
    asked for; none with injected seams (tests) or nothing to probe; automatic (-1): see ScanOptions.workers."""
    if options.workers == 0:
        return 0
    if options.host_probes is not None or options.http_transport is not None or options.open_stream is not None \
            or options.datagram is not None:
        return 0
    if options.pcap or options.probes == ():  # -sn / offline: nothing per host to spread over processes
        return 0
    if options.workers > 0:
        return min(options.workers, 16)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = hosts.upper_bound() if isinstance(hosts, TargetSet) else int(hosts)
    if cpus < WORKER_MIN_CPUS or n < WORKER_MIN_HOSTS:
        return 0
    return min(cpus // 2, MAX_WORKERS)


def raise_fd_limit(options: ScanOptions) -> None:
    """Let the soft open-file limit cover the scan's sockets (128 hosts at once with up to FDS_PER_HOST
    sockets each outgrow the 1024 of many desktops), up to the hard limit; worker processes inherit it.
    Never lowers it."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = options.concurrency * FDS_PER_HOST + 256
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
