"""From a request (in any dialect) to a queued job: inputs, options, engine, cost.

Every dialect ends here, so the rules (limits, webhooks, costs, idempotency, plan
caps) are enforced once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..config import Settings
from ..db.models import Account, Asset, Job
from ..db.session import Database
from ..engines.base import Engine
from ..engines.registry import engine_for, how_to_enable
from ..errors import Invalid, UnsupportedMode
from ..storage.base import Storage
from . import assets, credits, jobs, options, webhooks
from .options import LIST_INPUTS, OPTIONAL_INPUTS, REQUIRED_INPUTS


@dataclass
class InputRef:
    """One input: exactly one of an uploaded stream, a URL or an existing asset id."""

    stream: BinaryIO | None = None
    url: str | None = None
    asset_id: str | None = None


@dataclass
class JobRequest:
    mode: str
    inputs: dict[str, InputRef | list[InputRef]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    idempotency_key: str | None = None
    dialect: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    max_input_bytes: int | None = None  # a dialect's own narrower cap (KIE: 10 MB)
    max_active_per_key: int | None = None  # e.g. vidgen: one active job per key (409)


@dataclass(frozen=True)
class Quote:
    mode: str
    engine: str
    output_seconds: float
    cost: int
    options: dict[str, Any]


class Submitter:
    def __init__(self, settings: Settings, db: Database, storage: Storage,
                 engines: dict[str, Engine], enqueue: Callable[[Job], None]) -> None:
        self.settings, self.db, self.storage = settings, db, storage
        self.engines, self.enqueue = engines, enqueue

    def quote(self, mode: str, raw_options: dict[str, Any]) -> Quote:
        """Validate mode and options and price the job, without submitting it."""
        options.check_mode(mode)
        engine = engine_for(mode, self.engines)
        if engine is None:
            ways = how_to_enable(mode)
            fix = (f"Configure an engine that can: {'; or '.join(ways)}. "
                   if ways else f"No engine in this install can do {mode}. ")
            raise UnsupportedMode(
                f"No configured engine can do {mode}.",
                fix=fix + "GET /v1/engines lists the modes available now; the README "
                          "section 'Engines' explains each engine.")
        clean = options.normalize_options(mode, raw_options)
        seconds = engine.output_seconds(mode, clean)
        return Quote(mode, engine.name, seconds,
                     credits.estimate(self.settings, mode, seconds, clean), clean)

    def submit(self, account: Account, key_id: str | None, req: JobRequest) -> tuple[Job, bool]:
        quote = self.quote(req.mode, req.options)
        plan = self.settings.plan(account.plan)
        if quote.output_seconds > plan.max_output_seconds:
            raise Invalid(f"The {account.plan} plan allows outputs up to "
                          f"{plan.max_output_seconds} s; this job would make "
                          f"{quote.output_seconds:.0f} s.",
                          fix="Ask for a shorter output or upgrade the plan.")
        if req.webhook_url:
            webhooks.check_webhook_url(req.webhook_url, self.settings, plan.webhooks)
        asset_ids = self._resolve_inputs(account, req)
        options.check_inputs(req.mode, asset_ids, quote.options)
        fingerprint = {"mode": req.mode, "options": quote.options, "inputs": self._digests(asset_ids),
                       "webhook_url": req.webhook_url, "dialect": req.dialect}
        job_req = jobs.SubmitRequest(
            mode=req.mode, engine=quote.engine, inputs=asset_ids, options=quote.options,
            cost=quote.cost, webhook_url=req.webhook_url, idempotency_key=req.idempotency_key,
            fingerprint=fingerprint, dialect=req.dialect, meta=req.meta,
            request_id=req.request_id, key_id=key_id,
            max_active_per_key=req.max_active_per_key)
        return jobs.submit(self.db, self.settings, account.id, job_req, self.enqueue)

    def _resolve_inputs(self, account: Account, req: JobRequest) -> dict[str, Any]:
        """Asset ids by input name (a list of ids for list inputs such as reel images)."""
        wanted = {**OPTIONAL_INPUTS, **REQUIRED_INPUTS.get(req.mode, {})}
        lists = LIST_INPUTS.get(req.mode, {})
        out: dict[str, Any] = {}
        for name, ref in req.inputs.items():
            if name in lists:
                refs = ref if isinstance(ref, list) else [ref]
                kind, _, high = lists[name]
                if len(refs) > high:
                    raise Invalid(f"At most {high} {name} are allowed; got {len(refs)}.",
                                  fix=f"Send {high} or fewer.", field=name)
                out[name] = [self.ingest(account, r, kind, name, req.max_input_bytes).id
                             for r in refs]
                continue
            kind = wanted.get(name)
            if kind is None or isinstance(ref, list):
                raise Invalid(f"Mode {req.mode} takes no input named {name!r}"
                              f"{' as a list' if kind else ''}.",
                              fix=f"Send only: {', '.join([*wanted, *lists]) or 'no files'}.")
            out[name] = self.ingest(account, ref, kind, name, req.max_input_bytes).id
        return out

    def ingest(self, account: Account, ref: InputRef, kind: str | None, name: str = "file",
               max_bytes: int | None = None) -> Asset:
        expect = {kind} if kind else None
        if ref.asset_id:
            with self.db.session() as s:
                asset = assets.get_asset(s, account, ref.asset_id)
            if kind and asset.kind != kind:
                raise Invalid(f"Asset {asset.id} is {asset.kind}, but {name!r} needs "
                              f"{kind}.", fix=f"Pass the id of an {kind} asset.")
            return asset
        if ref.url:
            return assets.ingest_url(self.db, self.settings, self.storage, account, ref.url,
                                     expect=expect, max_bytes=max_bytes)
        if ref.stream is not None:
            return assets.ingest_stream(self.db, self.settings, self.storage, account,
                                        ref.stream, expect=expect, max_bytes=max_bytes)
        raise Invalid(f"Input {name!r} is empty.",
                      fix=f"Send a file, a '{name}_url' or a '{name}_asset_id'.")

    def _digests(self, asset_ids: dict[str, Any]) -> dict[str, Any]:
        """Inputs by content hash, so the same file re-uploaded matches its key."""
        with self.db.session() as s:
            def digest(aid: str) -> str:
                asset = s.get(Asset, aid)
                return asset.sha256 if asset is not None else aid

            return {name: [digest(a) for a in aid] if isinstance(aid, list) else digest(aid)
                    for name, aid in asset_ids.items()}
