"""`assetmon`: the TUI by default, and headless subcommands for cron and scripts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: `assetmon --help` stays fast
    from .core.progress import Progress
    from .dispatch import Dispatcher

DEFAULT_PROJECT = "default"


def main(argv: list[str] | None = None) -> int:
    """Every problem of configuration, files or database is one line and exit
    status 2 (`--debug` anywhere on the command line shows the traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        status = _main(args)
    except BrokenPipeError:  # `assetmon scans | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except Exception as exc:
        if debug:
            raise
        from .store.errors import explain

        line = explain(exc)
        if line is None:
            raise
        status = _fail(line)
    if argv is None and args[:1] and args[0] in QUICK_EXIT:
        _exit_now(status)
    return status


# Headless commands run from the console script end with os._exit once their
# output is flushed and the atexit handlers ran: tearing down an interpreter
# that imported the database layer and the pipeline (~900 modules) costs
# 0.3-1 s that the user would wait for, and nothing of it matters by then
# (every row is committed, SQLite's WAL is safe as it is; a scan's runner
# thread was joined). Idle process pools (the js step's) are killed rather
# than asked to stop and joined. Not the TUI nor the lab, nor in-process
# callers (tests pass argv).
QUICK_EXIT = frozenset({"scan", "resume", "health", "scans", "workers", "cancel", "profiles"})


def _exit_now(status: int) -> None:
    import atexit
    import contextlib
    import os
    import threading

    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        return  # a thread that may still write: let the interpreter wait for it
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:  # else multiprocessing's atexit handler would join them: forever
        for child in multiprocessing.active_children():
            child.kill()
            child.join(1.0)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said anyway
            stream.flush()
    atexit._run_exitfuncs()  # logging's flush and the like, without the teardown
    os._exit(status)


def _main(argv: list[str]) -> int:
    # Subcommands with parsers of their own keep them (and their imports) to themselves.
    if argv[:1] == ["lab"]:
        from .lab.cli import main as lab_main

        return lab_main(argv[1:])
    if argv[:1] == ["secrets"]:
        from .secrets.cli import main as secrets_main

        return secrets_main(argv[1:])
    if argv[:1] == ["rules"]:
        return _rules(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "tui"):
        return _tui()
    if args.command == "scan":
        return _scan(args)
    if args.command == "export":
        return _export(args)
    if args.command == "profiles":
        return _profiles(args)
    if args.command == "init-db":
        from .store import migrate
        from .store.db import get_engine

        engine = get_engine()  # creates, adopts or upgrades it
        print(f"{migrate.where(engine)} (revision {migrate.current(engine)})")
        return 0
    if args.command == "db":
        return _db(args)
    if args.command == "backup":
        return _backup(args)
    if args.command == "restore":
        return _restore(args)
    if args.command == "scans":
        return _scans(args)
    if args.command == "workers":
        return _workers(args)
    if args.command == "cancel":
        return _cancel(args)
    if args.command == "resume":
        return _resume(args)
    if args.command == "health":
        from .dispatch import Dispatcher

        health = Dispatcher().check_health()
        print(health.detail)
        return 0 if health.backend == "celery" else 1
    parser.error(f"unknown command {args.command}")
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assetmon", description="Attack-surface monitoring in the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("tui", help="the dashboard (default)")
    scan = sub.add_parser("scan", help="scan targets headlessly; results as JSON lines with --json")
    scan.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="domain, host, IP, CIDR or URL; !TARGET (or -TARGET after --) excludes",
    )
    scan.add_argument(
        "--exclude", action="append", default=[], metavar="TARGET", help="leave TARGET out of scope (repeatable)"
    )
    scan.add_argument("--project", default=DEFAULT_PROJECT, help="project name (created if missing)")
    scan.add_argument(
        "--profile",
        metavar="NAME",
        help="scan profile (see `assetmon profiles`; default: the project's, else standard)",
    )
    from .core.modules import NAMES  # plain data: cheap

    scan.add_argument(
        "--modules",
        help=f"comma separated, from: {','.join(NAMES)} (default: the project's, else the "
        "profile's; standard: subdomains,dns,ports,http,takeover)",
    )
    scan.add_argument(
        "--ports",
        help="top100, top1000, all, or a list like 22,80,8000-8100 (default: the project's, else the profile's)",
    )
    scan.add_argument("--nameserver", action="append", default=[], metavar="HOST:PORT", help="DNS server to use")
    scan.add_argument(
        "--verify",
        action="store_true",
        help="check found secrets live with their own provider (a harmless read-only call; off by default)",
    )
    scan.add_argument("--json", action="store_true", help="print results as JSON lines on stdout")
    export = sub.add_parser("export", help="inventory and change events of a project, as a file or on stdout")
    export.add_argument("project", help="project name")
    export.add_argument("--format", default="json", choices=("json", "jsonl", "csv", "md", "html"))
    export.add_argument("--since", type=int, metavar="SCAN", help="only events of scans after this scan id")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of stdout (relative: in the current folder)"
    )
    profiles = sub.add_parser("profiles", help="list the scan profiles: name, where it comes from, modules")
    profiles.add_argument("--json", action="store_true", help="one JSON object per profile on stdout")
    scans = sub.add_parser("scans", help="list scans: status, backend, runner, progress, attempts, age")
    scans.add_argument("--project", help="only this project's scans")
    scans.add_argument("--active", action="store_true", help="only queued, running or cancelling scans")
    scans.add_argument("--limit", type=int, default=50, help="at most this many, newest first (default 50)")
    scans.add_argument("--json", action="store_true", help="one JSON object per scan on stdout")
    workers = sub.add_parser("workers", help="Celery workers and what each runs now, from their heartbeats in Redis")
    workers.add_argument("--json", action="store_true", help="one JSON object per worker and per runner on stdout")
    cancel = sub.add_parser("cancel", help="stop a scan (a queued one at once, a running one within seconds)")
    cancel.add_argument("scan", type=int, metavar="SCAN", help="scan id (see `assetmon scans`)")
    resume = sub.add_parser("resume", help="resume a failed or cancelled scan from its last checkpoint")
    resume.add_argument("scan", type=int, metavar="SCAN", help="scan id (see `assetmon scans`)")
    resume.add_argument("--no-wait", action="store_true", help="queue it and return instead of following it")
    sub.add_parser("lab", help="serve the offline lab target on loopback (see `assetmon lab --help`)")
    sub.add_parser("secrets", help="find secrets in files or URLs (see `assetmon secrets --help`)")
    sub.add_parser("rules", help="acknowledge or suppress change events by type, host or fingerprint")
    sub.add_parser("init-db", help="create (or upgrade) the database and print where it is")
    dbs = sub.add_parser("db", help="the database schema: `db current` shows its revision, `db upgrade` upgrades it")
    dbs.add_argument("action", choices=("current", "upgrade"))
    backup = sub.add_parser("backup", help="write a consistent copy of the database to FILE (while scans run)")
    backup.add_argument("file", metavar="FILE", help="a new file (SQLite: a database; PostgreSQL: pg_dump's format)")
    restore = sub.add_parser("restore", help="replace the database with a backup made by `assetmon backup`")
    restore.add_argument("file", metavar="FILE", help="the backup")
    restore.add_argument("--force", action="store_true", help="restore even while scans are queued or running")
    sub.add_parser("health", help="say which backend scans would use now (exit 1 if not Celery)")
    return parser


def _export(args: argparse.Namespace) -> int:
    from .export import export, output_path, write_file
    from .store.repo import NotFound

    try:
        path = output_path(args.output) if args.output else None  # before the work: a bad path says so at once
        text = export(args.project, args.format, since_scan=args.since)
        if path is not None:
            write_file(path, text)
    except (NotFound, ValueError) as exc:  # ExportPathError is a ValueError
        return _fail(str(exc))
    if path is not None:
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _profiles(args: argparse.Namespace) -> int:
    """Every profile, checked: name, where it comes from, modules, what else it sets."""
    from .core import profiles

    for profile in profiles.all_profiles():
        others = {k: v for k, v in profile.values.items() if k != "modules"}
        if args.json:
            row = {"name": profile.name, "source": profile.source, "description": profile.description}
            print(json.dumps({**row, "modules": profile.modules, "settings": others}))
            continue
        modules = ",".join(profile.modules) or "(the project's)"
        settings = " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in others.items())
        print(f"{profile.name:12} {profile.source:10} {modules:42} {settings}".rstrip())
        if profile.description:
            print(f"{'':12} {profile.description}")
    print(f"your profiles: {profiles.user_dir()}/NAME.toml", file=sys.stderr)
    return 0


def _tui() -> int:
    from .store.db import get_engine
    from .ui.app import AssetMonApp

    get_engine()  # a damaged or too new database is refused here, in one line, not inside the TUI

    app = AssetMonApp()
    app.run()
    if app.dispatcher is not None:  # its local runs' last work (notifications), once the terminal is back
        _let_runners_finish(app.dispatcher)
    return 0


def _db(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .core.config import get_settings
    from .store import migrate
    from .store.db import get_engine, make_engine

    if args.action == "upgrade":
        engine = get_engine()  # opening it upgrades it (or refuses it, in one line)
        print(f"{migrate.where(engine)}: at revision {migrate.current(engine)} (head)")
        return 0
    engine = make_engine(get_settings().db_url)  # look without changing anything
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and not Path(database).exists():
        print(f"{database}: no database yet (any command creates it at revision {migrate.head()})")
        return 0
    try:
        migrate.check_integrity(engine)
        revision = migrate.current(engine)
        where = migrate.where(engine)
    finally:
        engine.dispose()
    if revision == migrate.head():
        print(f"{where}: at revision {revision} (head)")
    elif revision is None:
        print(f"{where}: no revision (new, or made before migrations): `assetmon db upgrade` adopts it")
    elif revision in migrate.known_revisions():
        print(f"{where}: at revision {revision}, head is {migrate.head()}: `assetmon db upgrade` upgrades it")
    else:
        return _fail(
            f"{where} is at revision {revision}, made by a newer AssetMon (this one knows up to {migrate.head()})"
        )
    return 0


def _backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .store.backup import BackupError, backup

    try:
        source = backup(Path(args.file))
    except BackupError as exc:
        return _fail(str(exc))
    print(f"backed up {source} to {args.file}", file=sys.stderr)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .store.backup import BackupError, active_scans, restore

    active = active_scans()
    if active and not args.force:
        ids = ", ".join(str(i) for i in active)
        return _fail(f"scans are active ({ids}): cancel them (`assetmon cancel SCAN`) or restore with --force")
    try:
        revision = restore(Path(args.file))
    except BackupError as exc:
        return _fail(str(exc))
    print(f"restored {args.file} (now at revision {revision})", file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"assetmon: {message}", file=sys.stderr)
    return 2


def _scan(args: argparse.Namespace) -> int:
    from .core.targets import TargetError, parse_target

    # Validate everything before storing anything.
    lines = [*args.targets, *("!" + t.lstrip("!-") for t in args.exclude)]
    try:
        targets = [parse_target(t) for t in lines]
    except TargetError as exc:
        return _fail(str(exc))
    if not any(not t.exclude for t in targets):
        return _fail("give at least one target to scan (not only exclusions)")
    for ns in args.nameserver:
        host, _, port = ns.rpartition(":") if ":" in ns else (ns, "", "53")
        if not (host and port.isdigit() and 0 < int(port) < 65536):
            return _fail(f"bad --nameserver {ns!r}: expected HOST:PORT, e.g. 127.0.0.1:5353")
    from .core import profiles
    from .core.modules import check_modules
    from .core.portspec import parse_ports

    try:
        modules = check_modules([m.strip() for m in (args.modules or "").split(",") if m.strip()])
        if args.modules is not None and not modules:
            return _fail("--modules: give at least one module")
        if args.ports:
            parse_ports(args.ports)
        if args.profile:
            profiles.get_profile(args.profile)  # an unknown name: one line with the known ones, nothing stored
    except ValueError as exc:  # SettingsError is one
        return _fail(str(exc))

    from .dispatch import Dispatcher
    from .store import repo

    project = repo.get_or_create_project(args.project)
    assert project.id is not None  # a stored row
    stored = repo.project_settings(project.id)
    explicit: dict[str, Any] = {}
    if args.ports:
        explicit["ports"] = args.ports
    if args.nameserver:
        explicit["nameservers"] = args.nameserver
    if args.verify:
        explicit["verify_secrets"] = True
    try:
        # global < profile (--profile, else the project's, else standard) < project settings < flags
        name = profiles.chosen(stored, {}, args.profile) or profiles.DEFAULT
        modules, options = profiles.resolve(modules, explicit, stored, name)
    except ValueError as exc:
        return _fail(str(exc))
    repo.add_targets(project.id, lines)
    options["seeds"] = [str(t) for t in targets if not t.exclude]
    dispatcher = Dispatcher()
    try:
        scan = dispatcher.submit(project.id, modules, options)
    except ValueError as exc:
        return _fail(str(exc))
    assert scan.id is not None  # a stored row
    print(
        f"scan {scan.id} of project {project.name!r} (profile {name}: {','.join(modules)}) "
        f"on {dispatcher.health().detail}",
        file=sys.stderr,
    )
    progress = _follow(dispatcher, scan.id)
    if args.json:
        for row in repo.scan_results(scan.id):
            print(json.dumps(row, default=str))
        print(json.dumps(_scan_outcome(scan.id)))
    else:
        _print_summary(repo.scan_results(scan.id))
    status = _ended(scan.id, progress)
    _let_runners_finish(dispatcher)
    return status


def _scan_outcome(scan_id: int) -> dict[str, Any]:
    """The --json output's last row: how the scan ended, each source's outcome, its inventory."""
    from .store import repo

    scan = repo.get_scan(scan_id)
    return {
        "type": "scan",
        "id": scan_id,
        "status": scan.status,
        "error": scan.error,
        "sources": json.loads(scan.sources or "[]"),
        "inventory": json.loads(scan.summary or "{}").get("inventory", {}),
    }


def _ended(scan_id: int, progress: Progress) -> int:
    """The last lines on stderr (a warning per source that failed or did not run); the exit status."""
    from .core.sanitize import clean_text
    from .store import repo

    for source in json.loads(repo.get_scan(scan_id).sources or "[]"):  # the row: whichever backend ran it
        if source.get("status") != "ok":
            reason = f" ({source['reason']})" if source.get("reason") else ""
            line = f"{source['source']}: {source['status']}{reason}"
            print(f"warning: {clean_text(line, 300)}", file=sys.stderr)
    print(f"scan {scan_id}: {progress.state} {progress.message}".rstrip(), file=sys.stderr)
    return {"done": 0, "cancelled": 130}.get(progress.state, 1)


def _scans(args: argparse.Namespace) -> int:
    from .dispatch import Dispatcher
    from .store import repo

    dispatcher = Dispatcher()
    project_id = None
    if args.project:
        try:
            project_id = repo.get_project(args.project).id
        except repo.NotFound as exc:
            return _fail(str(exc))
    rows = repo.active_scans() if args.active else repo.list_scans(project_id, limit=args.limit)
    rows = [r for r in rows if project_id is None or r.project_id == project_id]
    names = {p.id: p.name for p in repo.list_projects()}
    for scan in rows:
        assert scan.id is not None
        _, progress = dispatcher.poll(scan.id) if scan.status in ("queued", "running", "cancelling") else (scan, None)
        row = _scan_row(scan, progress, names.get(scan.project_id, str(scan.project_id)))
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{row['id']:>5}  {row['project'][:16]:16}  {row['status']:10}  {row['backend'] or '-':7}  "
                f"{row['progress']:>5}  {row['attempts']:>2}  {row['age']:>7}  {row['runner'] or '-':24}  "
                f"{row['message']}"[:200].rstrip()
            )
            if row["workers"]:
                print(f"       {_workers_line(row['workers'])}"[:200])
    if not rows and not args.json:
        print("no scans", file=sys.stderr)
    return 0


def _scan_row(scan: Any, progress: Progress | None, project: str) -> dict[str, Any]:
    from .core.sanitize import clean_text
    from .store.models import as_utc, utcnow

    modules = progress.modules.values() if progress else []
    # a step still finding its work (total not final) counts 0 until it ends: its done/total is no
    # fraction, and as the total grew the share went down
    share = (
        sum(m.fraction if m.determinate else 0.0 for m in modules) / len(modules)
        if modules
        else (1.0 if scan.status == "done" else 0.0)
    )
    created = as_utc(scan.created_at)
    age = (utcnow() - created).total_seconds() if created else 0.0
    return {
        "id": scan.id,
        "project": project,
        "status": scan.status,
        "backend": scan.backend,
        "runner": scan.owner,
        "progress": f"{share:.0%}",
        "attempts": scan.attempts,
        "age": _age(age),
        "modules": scan.modules,
        "message": clean_text((progress.message if progress else "") or scan.error, 120),
        "workers": [clean_text(str(w), 200) for w in (progress.workers if progress else [])],
        "warnings": [
            {k: clean_text(str(v), 300) for k, v in source.items()}
            for source in json.loads(scan.sources or "[]")
            if source.get("status") != "ok"
        ],
    }


def _workers(args: argparse.Namespace) -> int:
    """The workers view in text: each worker's last beat, then each runner's."""
    from .core import fleet
    from .core.config import get_settings
    from .core.sanitize import clean_text
    from .dispatch import redis_place

    url = get_settings().redis_url
    place = redis_place(url)
    from .store.identity import known_store_id

    beats = fleet.Fleet(url, timeout=2.0, store=known_store_id())  # this database's workers only
    workers, runners = beats.workers(live=True), beats.beats()
    if beats.down:
        return _fail_with(1, f"Redis unreachable at {place}")
    now = time.time()
    for w in workers:
        age = max(0.0, now - w.at)
        row: dict[str, Any] = {
            "type": "worker",
            "name": clean_text(w.name, 200),
            "host": clean_text(w.host, 200),
            "pid": w.pid,
            "concurrency": w.concurrency,
            "version": clean_text(w.version, 60),
            "started": w.started,
            "beat_age": round(age, 1),
            "older_release": w.older,
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{row['name'][:30]:30}  pid {w.pid:<7}  x{w.concurrency:<3}  {row['version'][:12]:12}  "
                f"beat {_age(age)} ago  up {_age(max(0.0, now - w.started))}"
                + ("  older release: restart it (it takes no scan of this install)" if w.older else "")
            )
    for b in runners:
        age = max(0.0, now - b.at)
        row = {
            "type": "runner",
            "runner": clean_text(b.runner, 200),
            "worker": clean_text(b.worker, 200),
            "scan_id": b.scan_id,
            "doing": clean_text(b.doing(), 200),
            "step": clean_text(b.step, 60),
            "chunk": b.chunk,
            "chunks": b.chunks,
            "done": b.done,
            "total": b.total,
            "beat_age": round(age, 1),
        }
        if args.json:
            print(json.dumps(row))
        else:
            where = row["worker"] or "(thread)"
            print(f"  {row['doing'][:60]:60}  {where[:30]:30}  {row['runner'][:24]:24}  {_age(age)} ago")
    if not workers:
        print(f"no worker has beaten in the last {fleet.TTL} s (Redis at {place})", file=sys.stderr)
    return 0


def _fail_with(status: int, message: str) -> int:
    print(f"assetmon: {message}", file=sys.stderr)
    return status


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _cancel(args: argparse.Namespace) -> int:
    from .dispatch import Dispatcher
    from .store import repo

    try:
        status = Dispatcher().cancel(args.scan)
    except repo.NotFound as exc:
        return _fail(str(exc))
    print(f"scan {args.scan}: {status}", file=sys.stderr)
    return 0 if status in ("cancelled", "cancelling") else 1


def _resume(args: argparse.Namespace) -> int:
    from .dispatch import Dispatcher
    from .store import repo

    dispatcher = Dispatcher()
    try:
        scan = dispatcher.resume(args.scan)
    except (repo.NotFound, ValueError) as exc:
        return _fail(str(exc))
    print(f"scan {args.scan} resumed on {dispatcher.health().detail}", file=sys.stderr)
    if args.no_wait and scan.backend == "celery":
        return 0
    progress = _follow(dispatcher, args.scan)
    status = _ended(args.scan, progress)
    _let_runners_finish(dispatcher)
    return status


# -- rules ----------------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2 (argparse adds the usage)."""

    def error(self, message: str) -> Any:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _rules_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="assetmon rules",
        description="Rules that acknowledge or suppress change events, past and future: in the feed, "
        "the new-events count, notifications and exports. Type and host are globs (* and ?), "
        "the fingerprint is exact; every field given must match.",
    )
    sub = parser.add_subparsers(dest="rules_command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    listing = sub.add_parser("list", help="the rules (with --project: those that apply to it)")
    listing.add_argument("--project", help="project name")
    listing.add_argument("--json", action="store_true", help="one JSON object per rule on stdout")
    add = sub.add_parser("add", help="add a rule")
    scope = add.add_mutually_exclusive_group(required=True)
    scope.add_argument("--project", help="project name")
    scope.add_argument("--all-projects", action="store_true", help="the rule applies to every project")
    add.add_argument("--action", required=True, choices=("suppress", "acknowledge"))
    add.add_argument("--type", default="", metavar="GLOB", help="event type, e.g. port_new or 'http_*'")
    add.add_argument("--host", default="", metavar="GLOB", help="host, e.g. '*.dev.acme.com'")
    add.add_argument("--fingerprint", default="", metavar="F", help="what the event is about, exactly")
    add.add_argument("--note", default="", metavar="TEXT", help="why (shown in the rules list)")
    rm = sub.add_parser("rm", help="delete a rule: the events it covered show again")
    rm.add_argument("rule", type=int, metavar="ID", help="rule id (see `assetmon rules list`)")
    return parser


def _rules(argv: list[str]) -> int:
    args = _rules_parser().parse_args(argv)
    from .store import event_log, repo

    if args.rules_command == "rm":
        if not event_log.delete_rule(args.rule):
            return _fail(f"no rule {args.rule}")
        print(f"rule {args.rule} deleted", file=sys.stderr)
        return 0
    project_id = None
    if args.project:
        try:
            project_id = repo.get_project(args.project).id
        except repo.NotFound as exc:
            return _fail(str(exc))
    names = {p.id: p.name for p in repo.list_projects()}
    if args.rules_command == "add":
        try:
            rule = event_log.add_rule(
                args.action,
                project_id=project_id,
                event_type=args.type,
                host=args.host,
                fingerprint=args.fingerprint,
                note=args.note,
            )
        except ValueError as exc:
            return _fail(str(exc))
        matched, new = event_log.rule_preview(rule)
        row = _rule_row(rule, names)
        print(
            f"rule {rule.id}: {row['action']} {_rule_fields(row)} in "
            f"{'every project' if rule.project_id is None else row['project']} "
            f"(covers {matched} stored event{'s' if matched != 1 else ''}, {new} of them new)",
            file=sys.stderr,
        )
        return 0
    rows = [_rule_row(r, names) for r in event_log.list_rules(project_id)]
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            note = f"  # {row['note']}" if row["note"] else ""
            print(f"{row['id']:>5}  {row['project'][:16]:16}  {row['action']:11}  {_rule_fields(row)}{note}")
    if not rows and not args.json:
        print("no rules", file=sys.stderr)
    return 0


def _rule_row(rule: Any, names: dict[Any, str]) -> dict[str, Any]:
    from .core.sanitize import clean_text
    from .store.models import as_utc

    project = "*" if rule.project_id is None else names.get(rule.project_id, str(rule.project_id))
    return {
        "id": rule.id,
        "project": clean_text(project, 80),  # "*": every project
        "action": rule.action,
        "type": clean_text(rule.event_type, 255),
        "host": clean_text(rule.host, 255),
        "fingerprint": clean_text(rule.fingerprint, 255),
        "note": clean_text(rule.note, 200),
        "created_at": as_utc(rule.created_at).isoformat(),
    }


def _rule_fields(row: dict[str, Any]) -> str:
    return " ".join(f"{key}={row[key]}" for key in ("type", "host", "fingerprint") if row[key])


REAP_EVERY = 5.0  # seconds between the CLI's reaper passes while it follows a scan
RUNNER_GRACE = 10.0  # seconds a thread runner gets, after the scan's end, to finish (notifications)
QUIET_GRACE = 0.5  # of which the first are not worth a line
TICK = 1.0  # seconds: the longest wait for a push; the line's clock and the reaper move on at least this often


def _let_runners_finish(dispatcher: Dispatcher) -> None:
    """A scan run in this process sends its notifications after its end: give
    them RUNNER_GRACE before the process exits (and kills the thread), saying so
    when it takes longer than a moment."""
    try:
        dispatcher.thread.join(QUIET_GRACE)
        busy = dispatcher.thread.busy()
        if busy:
            scans = ", ".join(f"#{i}" for i in busy)
            print(f"finishing scan {scans} (its notifications)… Ctrl+C leaves now", file=sys.stderr, flush=True)
            dispatcher.thread.join(RUNNER_GRACE - QUIET_GRACE)
    except KeyboardInterrupt:
        pass
    if dispatcher.thread.busy():
        from .notify import STALE

        print(
            "leaving with notifications unsent: they are kept as pending, and a worker's or the TUI's"
            f" next pass sends them (after {STALE / 60:.0f} min)",
            file=sys.stderr,
        )


def _follow(dispatcher: Dispatcher, scan_id: int) -> Progress:
    """Show progress until the scan ends; Ctrl+C asks it to stop and waits for it.
    No sleep-polling: each round waits for the next report (the thread's, or
    the worker's publish in Redis), at most TICK; the scan's end is a report,
    so the loop returns as soon as it is made."""
    tty = sys.stderr.isatty()
    last_line = ""
    last_reap = time.monotonic()
    try:
        while True:
            try:
                scan, progress = dispatcher.poll(scan_id)
                if not progress.active:
                    if tty:
                        print(file=sys.stderr)
                    return progress
                if time.monotonic() - last_reap >= REAP_EVERY:
                    last_reap = time.monotonic()
                    dispatcher.reap(deliveries=True)
                line = _progress_line(progress)
                if tty:
                    print("\r" + line[:150].ljust(150), end="", file=sys.stderr, flush=True)
                elif line != last_line:
                    print(line, file=sys.stderr, flush=True)
                last_line = line
                dispatcher.wait(scan, min(TICK, max(0.0, REAP_EVERY - (time.monotonic() - last_reap))))
            except KeyboardInterrupt:
                print("\ncancelling…", file=sys.stderr)
                dispatcher.cancel(scan_id)
    finally:
        dispatcher.celery.close_wait()


def _progress_line(progress: Progress) -> str:
    mods = " ".join(
        f"{name}:{m.status}" + (f" {m.count_text()}" if m.status == "running" and m.total else "")
        for name, m in progress.modules.items()
    )
    counters = " ".join(f"{k}={v}" for k, v in sorted(progress.counters.items()))
    line = f"[{progress.state} {progress.elapsed:5.1f}s] {mods} {counters} {progress.message}".strip()
    shown = _workers_line(progress.workers)
    return f"{line} · {shown}" if shown else line


def _workers_line(workers: list[str]) -> str:
    from .core.fleet import workers_line
    from .core.sanitize import clean_text

    return clean_text(workers_line(workers), 300)


def _print_summary(rows: list[dict[str, Any]]) -> None:
    from .core.sanitize import clean_text

    for row in rows:
        kind = row["type"]
        if kind == "dns":
            print(f"dns      {row['name']:40} {row['rtype']:6} {row['value']}")
        elif kind == "service":
            print(f"service  {row['address']}:{row['port']:<6} {row['service']:10} {clean_text(row['banner'], 60)}")
        elif kind == "http":
            print(f"http     {row['url']:50} {row['status']} {clean_text(row['title'], 60)}")


if __name__ == "__main__":
    sys.exit(main())
