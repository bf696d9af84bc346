"""Hashes that requirements pin (pip's --hash, a lock's files), held against the ones the upstream index gives.

A client that installs with such hashes refuses a file whose hash differs, though the mirror verified it against
its own index: the hashes were taken from another index, or the file was replaced since. The mirror serves what
its index gives, and says so when it selects the file, rather than leave the client to find out.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from packaging.version import Version

from .report import counted, few
from .reqfile import RequirementLine
from .upstream import UpstreamFile


def hash_values(hashes: Mapping[str, str]) -> frozenset[str]:
    """Each hash as "algorithm:hexdigest", in lower case, as pins and index entries are compared."""
    return frozenset(f"{algorithm.lower()}:{digest.lower()}" for algorithm, digest in hashes.items())


def _agrees(given: frozenset[str], pinned: frozenset[str]) -> Optional[bool]:
    """True when a file's hashes from the index share a value with the pinned ones, False when they share an
    algorithm and no value, None when they share no algorithm: then nothing tells."""
    if given & pinned:
        return True
    algorithms = {value.partition(":")[0] for value in pinned}
    return False if any(value.partition(":")[0] in algorithms for value in given) else None


def pin_disagreements(project: str, lines: Iterable[RequirementLine],
                      chosen: Mapping[Version, Sequence[UpstreamFile]]) -> list[str]:
    """A warning for each requirement line whose hashes the files chosen of its release contradict. A lock names
    each file: one whose hash differs is named. pip's --hash names none, and pip installs a file whose hash is
    one of them: the warning is for a release of which no file has one."""
    warnings = []
    for line in lines:
        files = [upstream_file for version, group in chosen.items()
                 if line.requirement.specifier.contains(version, prereleases=True) for upstream_file in group]
        if not files:
            continue
        given = {f.filename: hash_values(f.hashes) for f in files}
        locked = dict(line.file_hashes)
        differing = [name for name, hashes in given.items()
                     if name in locked and _agrees(hashes, locked[name]) is False]
        if differing:
            warnings.append(f"{line.origin}: the upstream's hash of {few(differing, 3)} differs from the lock's: "
                            f"the lock was made against another index, or the upstream replaced the file since; "
                            f"a client that installs the lock refuses it")
        verdicts = [_agrees(hashes, line.hashes) for hashes in given.values()] if line.hashes else []
        if False in verdicts and True not in verdicts:
            warnings.append(f"{line.origin}: none of the {counted(len(files), 'file')} the mirror takes of "
                            f"{project}{line.requirement.specifier} has a hash the line lists (--hash): the hashes "
                            f"were taken from another index, or the upstream replaced the files since; pip "
                            f"--require-hashes on a client refuses them")
    return warnings
