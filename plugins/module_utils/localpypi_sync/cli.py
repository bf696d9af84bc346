"""The command line: `localpypi-sync {sync,verify,status,export,health,metrics,check-config,explain} --config FILE`.

Exit codes: 0 everything selected is published (or verified, or healthy); 1 some projects or files failed
(or the mirror is not current); 2 the run could not start (bad config, busy lock, unreachable upstream,
unwritable directory).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Optional, Sequence

from packaging.utils import canonicalize_name

from . import __version__, missing_requirement
from .config import ConfigError, SyncConfig, load_config_file
from .explain import explain, explain_selection
from .health import mirror_health
from .report import Reporter, counted, few
from .select import TargetMatrix, lock_scope_warnings
from .state import LockBusy, LockHolder, MirrorState
from .status import mirror_status
from .sync import SyncAbort, recorded_files, run_sync
from .timespec import parse_duration
from .verify import verify_mirror

EXIT_OK, EXIT_FAILED, EXIT_ABORTED = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localpypi-sync", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", required=True, help="YAML file with the engine's options")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("--upstream", metavar="URL",
                        help="read this index instead of the config's, for this run: another mirror's tree carried "
                             "on a disk, file:///media/disk/pypi/web/simple/")
    sync = commands.add_parser("sync", parents=[common, source], help="bring the mirror up to date")
    sync.add_argument("--check", action="store_true", help="show what would change; write nothing")
    sync.add_argument("--force-prune", action="store_true",
                      help="prune even past prune_max_fraction, and from an upstream older than this mirror's last "
                           "sync, taking back what it lists that was deleted since (its serials are then the ones "
                           "to follow)")
    sync.add_argument("--wait", type=float, metavar="SECONDS", help="wait this long for a running sync")
    sync.add_argument("--project", action="append", metavar="NAME", help="sync only these projects")
    amount = sync.add_mutually_exclusive_group()
    amount.add_argument("--quiet", "-q", action="store_true", help="print failures and warnings only")
    amount.add_argument("--verbose", "-v", action="store_true",
                        help="also list the projects that did not change (one line each)")
    sync.add_argument("--explain", metavar="NAME", help="then show why NAME is in the mirror, as explain does")
    progress = sync.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    verify = commands.add_parser("verify", parents=[common, source], help="re-hash every published file")
    verify.add_argument("--repair", action="store_true",
                        help="re-download what is missing or corrupt (from --upstream, if given)")
    status = commands.add_parser("status", parents=[common], help="last run, serial, counts and disk usage")
    status.add_argument("--top", type=int, default=20, metavar="N",
                        help="list the N largest projects (default 20; 0 lists all; --json always lists all)")
    health = commands.add_parser("health", help="exit 1 if the mirror is not current (for monitoring): the "
                                               "last run failed or stopped, or none finished within --max-age")
    where = health.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="YAML file with the engine's options")
    where.add_argument("--directory", "-d", help="the mirror root instead, for a user who may not read the config")
    health.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    health.add_argument("--max-age", type=_duration, metavar="AGE",
                        help="the oldest a finished run may be: 36h, 2d, 1d12h, 90m, or seconds")
    metrics = commands.add_parser("metrics", help="the run records as Prometheus metrics, for node_exporter's "
                                                  "textfile collector")
    where = metrics.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="YAML file with the engine's options")
    where.add_argument("--directory", "-d", help="the mirror root instead, for a user who may not read the config")
    metrics.add_argument("--output", "-o", metavar="FILE",
                         help="write them into FILE (whole, renamed into place) instead of printing them")
    export = commands.add_parser("export", parents=[common],
                                 help="copy the mirror's tree to a disk, for a site with no network to read it from")
    export.add_argument("--to", required=True, metavar="DIR",
                        help="a directory on the disk; the tree goes into DIR/web/, read at the site as the upstream "
                             "file:///<where the disk is mounted there>/.../web/simple/")
    export.add_argument("--check", action="store_true", help="show what would be copied and removed; write nothing")
    export.add_argument("--verify", action="store_true",
                        help="also hash the files already on the disk (it reads them all), and copy again any whose "
                             "bytes are not those their page names (the site's sync named them)")
    export.add_argument("--wait", type=float, metavar="SECONDS", help="wait this long for a running sync")
    commands.add_parser("check-config", parents=[common], help="validate the config file and exit")
    why = commands.add_parser("explain", parents=[common],
                              help="which requirement and target took each release of a project in")
    why.add_argument("name", metavar="NAME")
    return parser


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print(document: dict, as_json: bool, text: str) -> None:
    if as_json:
        json.dump(document, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text + "\n")


def _command_sync(args: argparse.Namespace, config: SyncConfig) -> int:
    if args.force_prune:
        config = dataclasses.replace(config, force_prune=True)
    if args.wait is not None:
        config = dataclasses.replace(config, lock_timeout=args.wait)
    reporter = Reporter(progress=False if args.json else args.progress, quiet=args.quiet, verbose=args.verbose)
    result = run_sync(config, reporter, check_mode=args.check, only_projects=args.project)
    stats = result.stats
    fetched, removed = ("would download", "would remove") if args.check else ("downloaded", "removed")
    text = (f"{'ok' if result.ok else 'FAILED'}: {stats.projects} projects ({stats.projects_changed} changed, "
            f"{stats.projects_failed} failed), {fetched} {stats.files_downloaded} files / "
            f"{stats.bytes_downloaded / 1e6:.1f} MB, {stats.files_published} published, "
            f"{removed} {stats.files_removed} in {stats.duration_seconds:.1f}s")
    document = result.to_dict()
    if args.explain:
        _, lines = _explain(config, args.explain, result.plan)
        document["explain"] = lines
        text += "\n" + "\n".join(lines)
    _print(document, args.json, text)
    return EXIT_OK if result.ok else EXIT_FAILED


def _explain(config: SyncConfig, name: str, plan: Optional[dict]) -> tuple[bool, list[str]]:
    """Why the project is in the mirror: from the resolution's plan with dependencies, else from the config."""
    record = MirrorState(config.directory).load_project(canonicalize_name(name))
    published = list(recorded_files(record).values()) if isinstance(record, dict) else []
    if config.dependencies:
        return explain(plan, name, [f.upstream.filename for f in published])
    return explain_selection(config, TargetMatrix.from_config(config), name, [f.upstream for f in published])


def _command_explain(args: argparse.Namespace, config: SyncConfig) -> int:
    found, lines = _explain(config, args.name, MirrorState(config.directory).load_plan())
    _print({"ok": found, "explain": lines}, args.json, "\n".join(lines))
    return EXIT_OK if found else EXIT_FAILED


def _command_verify(args: argparse.Namespace, config: SyncConfig) -> int:
    web = config.directory + "/web"
    report = verify_mirror(web, config.workers)
    for problem in report.problems:
        sys.stderr.write(f"error: {problem}\n")
    document = report.to_dict()
    if args.repair and report.bad_projects:
        result = run_sync(config, Reporter(quiet=True), only_projects=report.bad_projects, rehash=True)
        document["repair"] = result.to_dict()
        after = verify_mirror(web, config.workers, projects=set(report.bad_projects))
        document["ok"] = result.ok and not after.problems
        document["problems_after_repair"] = after.problems
        for problem in result.failures + after.problems:
            sys.stderr.write(f"error: repair: {problem}\n")
    text = (f"{'ok' if document['ok'] else 'FAILED'}: {report.files_checked} files, "
            f"{report.bytes_checked / 1e6:.1f} MB checked, {len(report.problems)} problems"
            + (", repaired" if args.repair and report.problems and document["ok"] else ""))
    _print(document, args.json, text)
    return EXIT_OK if document["ok"] else EXIT_FAILED


def _run_summary(record: dict) -> str:
    outcome = "ok" if record.get("ok") else "failed"
    source = f" from {record['upstream']}" if record.get("upstream") else ""  # records before 2026-11-27 lack it
    return f"{record.get('started', '?')} ({outcome}, {record.get('stats', {}).get('duration_seconds', '-')}s){source}"


def _run_failures(record: Optional[dict], shown: int = 10) -> list[str]:
    """A failed run's error lines, the first few: what to fix, without the journal (rotated away, perhaps)."""
    failures = (record or {}).get("failures") or []
    lines = [f"  error: {failure}" for failure in failures[:shown]]
    if len(failures) > shown:
        lines.append(f"  ... and {len(failures) - shown} more (--json lists them all)")
    return lines


def _held_back(record: Optional[dict]) -> list[str]:
    """What the last run's exclude_newer age held back: why a new release is not here yet, and until when."""
    stats = (record or {}).get("stats") or {}
    projects = stats.get("projects_held_back")
    if not projects:
        return []
    return [f"exclude_newer holds back newer files of {counted(projects, 'project')}; the first becomes old enough "
            f"at {stats.get('held_back_until', '?')}, and the next run after that takes it"]


def _command_status(args: argparse.Namespace, config: SyncConfig) -> int:
    status = mirror_status(config.directory)
    last = status["last_run"]
    lines = [
        f"directory: {status['directory']}",
        f"last run: {_run_summary(last) if last else 'never'}",
        *_run_failures(last),
        *([f"last run with no error: finished {last.get('last_success') or 'none on record'}"]
          if last and not last.get("ok") else []),
    ]
    partial = status["last_partial_run"]
    if partial:
        lines.append(f"since then, only {few(partial.get('only_projects') or [], 5)}: {_run_summary(partial)}")
        lines += _run_failures(partial)
    abort = status["last_abort"]
    if abort:
        scope = f" (only {few(abort['only_projects'], 5)})" if abort.get("only_projects") else ""
        lines.append(f"last attempt{scope} stopped before syncing: {abort.get('started', '?')}: "
                     f"{abort.get('reason', '?')}")
    lock = status["lock"]
    if lock:
        holder = LockHolder(**lock)
        lines.append(f"running now: pid {holder.pid}{holder.doing}, since {holder.since}" if holder.running else
                     f"interrupted: pid {holder.pid}{holder.doing}, which runs no more, took the lock at "
                     f"{holder.since}; {holder.to_finish}")
    lines += [
        f"serial: {status['serial'] if status['serial'] is not None else '-'}",
        f"projects: {status['projects']}  files: {status['files']}  size: {status['bytes'] / 1e6:.1f} MB",
    ]
    biggest = sorted(status["per_project"].items(), key=lambda item: (-item[1]["bytes"], item[0]))
    shown = biggest[:args.top] if args.top > 0 else biggest
    lines += [f"  {name}: {data['files']} files, {data['bytes'] / 1e6:.1f} MB" for name, data in shown]
    if len(shown) < len(biggest):
        lines.append(f"  ... and {len(biggest) - len(shown)} smaller (--top 0 or --json lists every project)")
    lines += [f"{marker} upstream (PEP 792): {few(names, 10)}"
              for marker, names in status["marked"].items()]
    lines += _held_back(last)
    _print(status, args.json, "\n".join(lines))
    return EXIT_OK


def _command_export(args: argparse.Namespace, config: SyncConfig) -> int:
    from .export import ExportAbort, export_mirror  # noqa: PLC0415 - only this command needs it

    try:
        report = export_mirror(config.directory, args.to, check_mode=args.check, verify_disk=args.verify,
                               lock_timeout=config.lock_timeout if args.wait is None else args.wait)
    except ExportAbort as exc:
        sys.stderr.write(f"localpypi-sync: export: {exc}\n")
        return EXIT_ABORTED
    except LockBusy as exc:
        sys.stderr.write(f"localpypi-sync: export: {exc}; wait for it, or give --wait SECONDS\n")
        return EXIT_ABORTED
    for problem in report.problems:
        sys.stderr.write(f"error: {problem}\n")
    copied, removed = ("would copy", "would remove") if args.check else ("copied", "removed")
    text = (f"{'ok' if report.ok else 'FAILED'}: {report.projects} projects to {report.target}: {copied} "
            f"{report.files_copied} files / {report.bytes_copied / 1e6:.1f} MB ({report.files_present} there "
            f"already), {report.pages_written} pages; {removed} {report.files_removed} files and "
            f"{report.projects_removed} projects the mirror no longer has")
    if report.damaged_on_disk:
        damaged = [os.path.basename(path) for path in report.damaged_on_disk]
        text += (f"; the copies {'would include' if args.check else 'include'} {len(damaged)} files that were "
                 f"damaged on the disk: {few(damaged, 5)}")
    if not args.check:
        simple = os.path.join(report.target, "simple")
        text += f"; flushed to the disk. At the site, the disk mounted as here: sync --upstream file://{simple}/"
    _print(report.to_dict(), args.json, text)
    return EXIT_OK if report.ok else EXIT_FAILED


def _command_health(args: argparse.Namespace, directory: str) -> int:
    health = mirror_health(directory, args.max_age)
    text = f"ok: {health.summary}" if health.ok else "\n".join(f"problem: {p}" for p in health.problems)
    _print(health.to_json(), args.json, text)
    return EXIT_OK if health.ok else EXIT_FAILED


def _command_check_config(args: argparse.Namespace, config: SyncConfig) -> int:
    """The config as read, and what a run of it would warn of before asking the upstream anything (requirements
    file options it ignores, a lock for none of the targets): a config that runs, and yet not as meant."""
    matrix = TargetMatrix.from_config(config)
    targets = [slot.label for slot in matrix.slots if slot.label]
    warnings = [*config.notes, *lock_scope_warnings(config.lock_scopes, matrix)]
    if not args.json:
        sys.stderr.writelines(f"warning: {warning}\n" for warning in warnings)
    _print({"ok": True, "directory": config.directory, "upstream": config.upstream, "targets": targets,
            "warnings": warnings}, args.json, f"ok: {args.config} (targets: {', '.join(targets) or 'any'})")
    return EXIT_OK


def _command_metrics(args: argparse.Namespace, directory: str) -> int:
    try:
        from .metrics import metrics_text, write_metrics  # noqa: PLC0415 - only this command needs the library
    except ImportError as exc:
        raise ConfigError(missing_requirement(exc, "metrics")) from None
    if args.output is None:
        sys.stdout.write(metrics_text(directory))
        return EXIT_OK
    try:
        write_metrics(directory, args.output)
    except OSError as exc:
        sys.stderr.write(f"localpypi-sync: metrics: cannot write {args.output}: {exc.strerror or exc}\n")
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("health", "metrics"):
            directory = args.directory or load_config_file(args.config).directory
            return (_command_health if args.command == "health" else _command_metrics)(args, directory)
        config = load_config_file(args.config, {"upstream": args.upstream} if getattr(args, "upstream", None) else {})
        handler = {"sync": _command_sync, "verify": _command_verify, "status": _command_status,
                   "export": _command_export, "check-config": _command_check_config,
                   "explain": _command_explain}[args.command]
        return handler(args, config)
    except (ConfigError, SyncAbort) as exc:
        sys.stderr.write(f"localpypi-sync: {exc}\n")
        return EXIT_ABORTED
    except KeyboardInterrupt:
        sys.stderr.write("localpypi-sync: interrupted; published pages are intact, the next run resumes\n")
        return 130
