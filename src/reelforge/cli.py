"""The ``reelforge`` command line.

Server side: ``serve``, ``worker``, ``doctor``, ``db upgrade``, ``accounts``, ``keys``.
Client side: ``submit``, ``status``, ``wait``, ``download`` — over HTTP when given an
API key (``--key`` or REELFORGE_API_KEY), otherwise straight from the local database
of the server on this machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import Client, make_client
from .config import Settings
from .errors import ReelforgeError

app = typer.Typer(help="reelforge: a self-hosted video generation API server.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts, plans and credits.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True)

URL_OPT = typer.Option("http://127.0.0.1:8000", "--url", envvar="REELFORGE_URL",
                       help="Server base URL (client commands with --key).")
KEY_OPT = typer.Option(None, "--key", envvar="REELFORGE_API_KEY",
                       help="API key; without one, the local server's database is read.")


def _settings() -> Settings:
    return Settings()


def _fail(exc: ReelforgeError) -> None:
    err.print(f"[red]error:[/red] {exc.message}\n[yellow]fix:[/yellow] {exc.fix}")
    raise typer.Exit(1)


def _runtime():  # type: ignore[no-untyped-def]
    return _runtime_from(_settings())


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="TCP port."),
          workers: Optional[int] = typer.Option(None, help="Worker threads in this process "
                                                "(default: settings.workers; 0 = API only)."),
          ) -> None:
    """Start the API server (embedded default: SQLite, ./data, in-process workers)."""
    import uvicorn

    from .api.app import create_app
    from .core.logs import setup_logging

    settings = _settings()
    setup_logging(settings.log_level, settings.log_json)
    if workers is not None:
        settings.workers = workers
        settings.embedded_workers = workers > 0
    if settings.public_base_url == "http://127.0.0.1:8000" and (host, port) != ("127.0.0.1", 8000):
        settings.public_base_url = f"http://{host}:{port}"
    rt = _runtime_from(settings)
    _first_start(rt)
    out.print(f"reelforge serving on http://{host}:{port} — docs at /docs — "
              + ", ".join(f"{k}: {v}" for k, v in settings.describe().items()))
    uvicorn.run(create_app(rt), host=host, port=port, log_level="warning",
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)


def _runtime_from(settings: Settings):  # type: ignore[no-untyped-def]
    from .runtime import Runtime

    try:
        rt = Runtime.build(settings)
    except ValueError as exc:  # a setting that cannot work; its message names the fix
        err.print(f"[red]error in the settings:[/red] {exc}")
        raise typer.Exit(2) from None
    rt.db.upgrade()
    return rt


def _first_start(rt: Any) -> None:
    """On an empty database, make the admin account and print its key once."""
    from sqlalchemy import func, select

    from .core import accounts, keys
    from .db.models import Account

    with rt.db.session() as s:
        if s.scalar(select(func.count()).select_from(Account)):
            return
        admin = accounts.create_account(s, rt.settings, "admin", plan="enterprise",
                                        is_admin=True)
        _, raw = keys.create_key(s, admin, "admin (first start)")
    out.print("\n[bold]First start: an admin account was created. Its API key is shown "
              "only now — store it:[/bold]\n")
    print(f"    {raw}\n", flush=True)  # never wrapped, so it copies whole from any log


@app.command()
def worker(concurrency: int = typer.Option(2, "--concurrency", "-c",
                                           help="Jobs rendered at once in this process.")) -> None:
    """Run workers only (scale-out: REELFORGE_BROKER_URL=redis://…)."""
    import signal
    import threading

    from .core.logs import setup_logging

    settings = _settings()
    setup_logging(settings.log_level, settings.log_json)
    rt = _runtime_from(settings)
    rt.start_workers(concurrency)
    out.print(f"reelforge worker: {concurrency} threads — "
              + ", ".join(f"{k}: {v}" for k, v in settings.describe().items()))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    rt.stop()


@app.command()
def doctor() -> None:
    """Report ffmpeg (version, libx264, libass, filters), database, broker and storage."""
    from .media.ffmpeg import FFmpeg, find_ffmpeg

    settings = _settings()
    table = Table(show_header=False)
    ok = True
    try:
        feats = FFmpeg(find_ffmpeg(settings.ffmpeg_path)).features()
        table.add_row("ffmpeg", f"{feats.path}\n{feats.version}")
        table.add_row("libx264", "yes" if feats.has_libx264 else "[red]missing[/red]")
        table.add_row("libass", "yes" if feats.has_libass else "no (captions as overlays)")
        table.add_row("filters", ", ".join(sorted(feats.filters)) or "-")
        if feats.missing:
            table.add_row("missing filters", f"[red]{', '.join(sorted(feats.missing))}[/red]")
        table.add_row("ffprobe", "not needed: probing uses PyAV with a forced demuxer")
        ok = ok and feats.has_libx264
    except ReelforgeError as exc:
        table.add_row("ffmpeg", f"[red]{exc.message}[/red] — {exc.fix}")
        ok = False
    try:
        rt = _runtime_from(settings)
        rt.db.ping()
        table.add_row("database", f"{rt.db.describe()} (ok)")
        table.add_row("storage", rt.storage.describe())
        table.add_row("broker", settings.describe()["broker"])
        table.add_row("engines", ", ".join(f"{n}: {', '.join(e.capabilities().modes)}"
                                           for n, e in rt.engines.items()))
    except Exception as exc:
        table.add_row("database", f"[red]{exc}[/red]")
        ok = False
    out.print(table)
    raise typer.Exit(0 if ok else 1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (serve does this by itself on start)."""
    from .db.session import Database

    settings = _settings()
    db = Database(settings.database_url)
    db.upgrade()
    out.print(f"database at head: {db.describe()}")


@accounts_app.command("create")
def accounts_create(name: str, plan: str = typer.Option("starter", help="Plan name."),
                    credits: Optional[int] = typer.Option(
                        None, help="Initial credits (default: the plan's monthly credits)."),
                    quiet: bool = typer.Option(False, "--quiet", "-q",
                                               help="Print only the account id.")) -> None:
    """Create an account on a plan."""
    from .core import accounts

    rt = _runtime()
    try:
        with rt.db.session() as s:
            acc = accounts.create_account(s, rt.settings, name, plan=plan, credits=credits)
    except ReelforgeError as exc:
        _fail(exc)
    out.print(acc.id if quiet else f"account {acc.name} ({acc.id}) on {acc.plan}, "
              f"{acc.balance} credits")


@accounts_app.command("list")
def accounts_list() -> None:
    """List accounts with plan and balance."""
    from sqlalchemy import select

    from .db.models import Account

    rt = _runtime()
    table = Table("id", "name", "plan", "balance", "held")
    with rt.db.session() as s:
        for a in s.scalars(select(Account).order_by(Account.created_at)):
            table.add_row(a.id, a.name, a.plan, str(a.balance), str(a.held))
    out.print(table)


@accounts_app.command("grant")
def accounts_grant(name: str, credits: int, note: str = "manual grant") -> None:
    """Add credits to an account (recorded in the ledger)."""
    from .core import accounts

    rt = _runtime()
    try:
        with rt.db.session() as s:
            acc = accounts.find_account(s, name)
            accounts.grant_credits(s, acc, credits, note)
            balance = acc.balance
    except ReelforgeError as exc:
        _fail(exc)
    out.print(f"{name}: balance {balance}")


@keys_app.command("create")
def keys_create(account: str = typer.Option(..., "--account", "-a", help="Account name or id."),
                name: str = typer.Option("", help="A label for the key."),
                key_format: str = typer.Option(
                    "reelforge", "--format",
                    help="Key format: reelforge (rf_live_…), dockora (dk_…), clipora "
                         "(ck_live_…) or qamera (mk_live_….…). Every format works on every API."),
                quiet: bool = typer.Option(False, "--quiet", "-q",
                                           help="Print only the key (for scripts).")) -> None:
    """Create an API key. It is printed once and stored only as a hash."""
    from .core import accounts, keys

    rt = _runtime()
    try:
        with rt.db.session() as s:
            _, raw = keys.create_key(s, accounts.find_account(s, account), name, key_format)
    except ReelforgeError as exc:
        _fail(exc)
    if quiet:
        print(raw)
    else:
        out.print(f"API key for {account} (shown once, store it now):\n{raw}")


@keys_app.command("list")
def keys_list(account: str = typer.Option(..., "--account", "-a")) -> None:
    """List an account's keys (never the secrets)."""
    from .core import accounts, keys

    rt = _runtime()
    table = Table("id", "prefix", "name", "created", "last used", "revoked")
    with rt.db.session() as s:
        for k in keys.list_keys(s, accounts.find_account(s, account)):
            table.add_row(k.id, k.prefix + "…", k.name, f"{k.created_at:%Y-%m-%d %H:%M}",
                          f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
                          "yes" if k.revoked_at else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, account: str = typer.Option(..., "--account", "-a")) -> None:
    """Revoke a key; it stops working at once."""
    from .core import accounts, keys

    rt = _runtime()
    try:
        with rt.db.session() as s:
            keys.revoke_key(s, accounts.find_account(s, account), key_id)
    except ReelforgeError as exc:
        _fail(exc)
    out.print(f"revoked {key_id}")


@app.command()
def submit(mode: str = typer.Argument(..., help="e.g. image_to_video"),
           image: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
           audio: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
           video: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
           option: list[str] = typer.Option([], "--option", "-o",
                                            help="KEY=VALUE, e.g. -o style=cinematic -o duration=5"),
           wait_: bool = typer.Option(False, "--wait", help="Show progress until it ends."),
           url: str = URL_OPT, key: Optional[str] = KEY_OPT) -> None:
    """Submit a job over HTTP and print its id."""
    if not key:
        _fail(ReelforgeError("submit needs an API key.", fix="Pass --key or set "
                             "REELFORGE_API_KEY (create one: reelforge keys create -a NAME)."))
    fields = dict(o.split("=", 1) for o in option)
    files = {n: p for n, p in (("image", image), ("audio", audio), ("video", video)) if p}
    client = make_client(url, key)  # HTTP: a key is required above
    try:
        job = client.submit(mode, fields, files)
    except ReelforgeError as exc:
        _fail(exc)
    out.print(job["id"])
    if wait_:
        _wait(client, job["id"])


@app.command()
def status(job_id: str, url: str = URL_OPT, key: Optional[str] = KEY_OPT) -> None:
    """Print a job as JSON."""
    try:
        out.print_json(json.dumps(make_client(url, key, _settings).get_job(job_id)))
    except ReelforgeError as exc:
        _fail(exc)


@app.command()
def wait(job_id: str, url: str = URL_OPT, key: Optional[str] = KEY_OPT) -> None:
    """Show a progress bar until the job ends; exit 1 if it did not succeed."""
    _wait(make_client(url, key, _settings), job_id)


def _wait(client: Client, job_id: str) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task("queued", total=100)
            while True:
                job = client.get_job(job_id)
                label = job["stage"] if job["status"] == "running" else job["status"]
                if job["status"] == "queued" and job.get("queue_position") is not None:
                    label = f"queued (position {job['queue_position']})"
                bar.update(task, completed=job["progress"], description=f"{job_id} {label}")
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.5)
    except ReelforgeError as exc:
        _fail(exc)
    if job["status"] != "succeeded":
        e = job.get("error") or {}
        err.print(f"[red]{job['status']}[/red]: {e.get('message', '')}\n"
                  f"[yellow]fix:[/yellow] {e.get('fix', '')}")
        raise typer.Exit(1)
    out.print(f"{job_id} succeeded: outputs {', '.join(job['outputs'])}")


@app.command()
def download(job_id: str, output: Path = typer.Option(..., "-o", "--output", help="File to write."),
             name: str = typer.Option("video", help="Which output (video, poster, …)."),
             url: str = URL_OPT, key: Optional[str] = KEY_OPT) -> None:
    """Save a finished job's output to a file."""
    try:
        size = make_client(url, key, _settings).download(job_id, name, output)
    except ReelforgeError as exc:
        _fail(exc)
    out.print(f"wrote {output} ({size} bytes)")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m reelforge.cli
    main()
