"""Hosted providers: the ``runway`` and ``openai`` (Sora) engines.

Each hands ``text_to_video`` (and, when configured, ``image_to_video``) to a vendor's
official API and brings the result back under our output contract. The loop is the
same for both (``HostedEngine.run``); a subclass only says how a task is created,
polled and cancelled, and where its video is:

1. submit: create a task (a prompt, a shape, a duration, the input image if any);
2. poll every ``provider_poll_s``, calling ``progress("generating", fraction)`` each
   time, so a cancel, the job timeout or a lost lease stops the wait (``Progress``
   raises); on the way out the remote task is cancelled, best effort, so it stops
   costing money;
3. download the output, streamed to the work directory and capped at
   ``limits.max_upload_bytes``;
4. conform: the file is checked like any upload (type told from its bytes, demuxer
   forced from the allow-list, declared facts against the limits:
   ``media.probe.inspect_file``), then decoded and re-encoded through the encoder every
   local mode uses (``engines.local.context.encode``): H.264 yuv420p BT.709 faststart at
   the promised size and frame rate, exactly ``duration`` seconds (the provider's clip
   trimmed, or its last frame held when it is short), its audio kept, the watermark
   drawn, with the poster and spritesheet.

Shapes and lengths. Each provider is asked for the nearest shape its model makes (the
picture is then centre-cropped to the aspect asked for) and the shortest length that
covers ``duration`` (Sora's 4/8/12 s, veo's 4/6/8 s; trimmed in conform). What a model
cannot make is refused at submit (``output_seconds``), not faked: 1080p from a 720p
model, 10 s from an 8 s one, a prompt the provider would refuse.

Trust. The base URL and the key are the operator's settings, so calls to the API itself
skip the address guard (a provider on a private network, or on loopback as in the
tests, works). An output URL on the same origin (scheme, host and port) as the base URL
is fetched the same way. Any other output URL (Runway's are signed links on a CDN), and
any redirect that leaves the origin, is a URL we were handed, so it goes through
:func:`reelforge.core.fetch.fetch_to_file`, the guard user URLs pass (public addresses
only unless listed in ``trusted_networks``, each redirect checked, size and time
capped), and never carries the API key.

Errors are ``EngineError`` quoting the provider, with a fix naming what to change: a
refused key (401/403) names ``REELFORGE_<PROVIDER>_API_KEY``; a refused request (other
4xx) and a failed task are not retried (a retry would be charged for the same answer);
an unreachable provider (network, 5xx) is, by the worker. 429 and 503 are waited out
within the attempt (``Retry-After``, else exponential backoff), a few times.

The package holds one concept per module: ``hosted`` (the shared loop, ``Task``, the
error helpers), ``runway`` and ``openai`` (one engine each). Importing the package
imports both engine modules, so their ``@register`` decorators run (the registry
imports ``reelforge.engines.providers``); the names callers and tests use are
re-exported here.
"""

from __future__ import annotations

from reelforge.engines.providers.hosted import (HostedEngine, Task, image_bytes,
                                                provider_error, provider_text)
from reelforge.engines.providers.runway import RunwayEngine, runway_ratio, runway_seconds
from reelforge.engines.providers.openai import (  # after runway: registration order
    OpenAIEngine, openai_seconds, openai_size)

__all__ = ["HostedEngine", "OpenAIEngine", "RunwayEngine", "Task", "image_bytes",
           "openai_seconds", "openai_size", "provider_error", "provider_text",
           "runway_ratio", "runway_seconds"]
