"""Run work over many keys in forked worker processes, each with its own interpreter lock.

A cold sync of small files is bound by one core: every download is a handful of system calls, and each of
them hands the GIL from one worker thread to another. Processes share the keys instead: each takes the next
key from a counter in shared memory when it has room for one, so a process that drew large projects simply
takes fewer of them. Results come back over one pipe per process, in the order they finish.

Forking (not spawning) is deliberate: the children inherit the run as it stands (its config, its resolution,
the pages already read) without pickling it, and the caller forks before it starts any thread of its own.
A child dies with its parent (PR_SET_PDEATHSIG on Linux), so a killed run leaves no orphan that still holds
the mirror's lock or writes into it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback
from typing import Any, Callable, Hashable, Iterator, Optional, Sequence

PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True)
class Lost:
    """A key whose result never came back: the process working on it died or failed."""

    reason: str


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes  # noqa: PLC0415 - only a forked child needs it

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # best effort: not Linux, or ctypes unusable in a sandbox
        pass  # a killed parent then leaves this child to finish the keys it holds
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def _child_main(work: Callable[[Iterator[Any]], Iterator[tuple[Any, Any]]], keys: Sequence[Any],
                next_index: Any, stopped: Any, results: multiprocessing.connection.Connection,
                parent_pid: int) -> None:
    _die_with_parent(parent_pid)

    def take() -> Iterator[Any]:
        while True:
            with next_index.get_lock():  # also guards `stopped`: a key is taken before the stop or never
                if stopped.value:
                    return
                index = next_index.value
                next_index.value = index + 1
            if index >= len(keys):
                return
            yield keys[index]

    try:
        for key, result in work(take()):
            results.send((key, result))
    except BaseException as exc:  # reported by the parent against the keys this process held
        results.send((None, f"{type(exc).__name__}: {exc}".strip() + "\n" + traceback.format_exc(limit=3)))
        raise
    finally:
        results.close()


def map_in_processes(work: Callable[[Iterator[Any]], Iterator[tuple[Hashable, Any]]], keys: Sequence[Hashable],
                     processes: int, stop: Optional[Callable[[], bool]] = None,
                     untaken: Optional[list[Hashable]] = None) -> Iterator[tuple[Hashable, Any]]:
    """Yield (key, result) as each finishes; work runs in each child over the keys that child takes.

    Every key is yielded exactly once: a key whose process died first comes with a Lost result. With `stop`,
    asked after each result: once it is true, the children take no new key and finish the ones they hold,
    and the keys no child took go to `untaken`, in their order. The caller must not have threads running
    (fork copies only the calling thread)."""
    assert (stop is None) == (untaken is None), "stop and untaken go together"
    context = multiprocessing.get_context("fork")
    next_index = context.Value("q", 0)
    stopped = context.Value("b", 0, lock=False)  # read and written under next_index's lock
    readers: dict[multiprocessing.connection.Connection, Any] = {}
    failures: list[str] = []
    pending = set(keys)
    try:
        for number in range(processes):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_child_main, name=f"localpypi-sync-{number + 1}",
                                      args=(work, keys, next_index, stopped, writer, os.getpid()), daemon=True)
            process.start()
            writer.close()  # the child's copy is the only writer: its exit reads as end of file here
            readers[reader] = process
        while readers:
            for reader in multiprocessing.connection.wait(list(readers)):
                try:
                    key, result = reader.recv()
                except (EOFError, OSError):
                    process = readers.pop(reader)
                    process.join()
                    if process.exitcode:
                        failures.append(f"worker process {process.name} exited with {_exit_text(process.exitcode)}")
                    continue
                if key is None:
                    failures.append(f"worker process failed: {result.splitlines()[0]}")
                    continue
                pending.discard(key)
                yield key, result
                if stop is not None and not stopped.value and stop():
                    with next_index.get_lock():
                        stopped.value = 1
    finally:
        for process in readers.values():
            if process.is_alive():
                process.terminate()
            process.join()
    taken = min(next_index.value, len(keys))
    if stopped.value:
        untaken.extend(keys[taken:])
    else:
        taken = len(keys)  # not stopped: a key no child took was lost with the children that died first
    reason = "; ".join(failures) or "no worker process reported it"
    for key in keys[:taken]:
        if key in pending:
            yield key, Lost(reason)


def _exit_text(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"status {exitcode}"
