"""A thin wrapper over the `anthropic` SDK's Messages API: retries with exponential backoff
(longer when the API's `retry-after` header asks for it: 429 rate limit, 529 overloaded), token
and cost accounting, and the models endpoint check of the configured model. The SDK client is
injectable: tests pass `anthropic.Anthropic(base_url=<a fake server on 127.0.0.1>)`, so the real
SDK builds and sends the requests (tests/fake_messages_api.py), or a scripted fake.
"""
from __future__ import annotations

import datetime
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from autoresearch.agent_config import AnthropicConfig, Prices
from autoresearch.proposers.base import ProposerUnavailable

log = logging.getLogger(__name__)


@dataclass
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens


def cost_of(usage: Any, prices: Prices) -> tuple[dict[str, int], float]:
    """Tokens by kind and their price in USD for one response's `usage`."""
    counts = {"input": int(getattr(usage, "input_tokens", 0) or 0),
              "output": int(getattr(usage, "output_tokens", 0) or 0),
              "cache_write": int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
              "cache_read": int(getattr(usage, "cache_read_input_tokens", 0) or 0)}
    cost = sum(counts[k] * getattr(prices, k) for k in counts) / 1e6
    return counts, cost


def retry_after_s(err: BaseException) -> float | None:
    """Seconds the API asked us to wait (`retry-after` / `retry-after-ms` headers), if any."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms") is not None:
            return float(headers["retry-after-ms"]) / 1000.0
        if headers.get("retry-after") is not None:
            return float(headers["retry-after"])
    except (TypeError, ValueError):
        return None           # an HTTP date: fall back to our own backoff
    return None


class ModelUnavailable(ValueError):
    """The API does not serve the configured model (retired or misspelt)."""


def end_of_life(model: str) -> datetime.date | None:
    """The end-of-life date the installed SDK records for a deprecated model (None: not deprecated)."""
    try:
        from anthropic._data import DEPRECATED_MODELS   # the SDK's own table, e.g. 'January 22nd, 2027'
    except ImportError:
        return None
    text = DEPRECATED_MODELS.get(model)
    if not text:
        return None
    try:
        return datetime.datetime.strptime(re.sub(r"(\d)(st|nd|rd|th)", r"\1", text), "%B %d, %Y").date()
    except ValueError:
        return None


def check_model(sdk: Any, model: str, today: datetime.date | None = None) -> None:
    """Refuse a model past the end of life the installed SDK records for it (offline); then ask
    the API's models endpoint whether `model` is served and raise ModelUnavailable when it says
    no (404). With a client without a models endpoint (a scripted fake) only the first check runs;
    preflight / research doctor check the name against the SDK's list."""
    eol = end_of_life(model)
    today = today or datetime.date.today()
    if eol is not None and eol <= today:
        raise ModelUnavailable(f"model {model!r} reached its end of life on {eol} (the installed "
                               f"anthropic SDK says so): set anthropic.model or pass --model")
    if eol is not None:
        log.warning("model %r is deprecated: end of life on %s (%d days)", model, eol, (eol - today).days)
    models = getattr(sdk, "models", None)
    if models is None or not hasattr(models, "retrieve"):
        return
    import anthropic
    try:
        models.retrieve(model)
    except anthropic.NotFoundError as e:
        raise ModelUnavailable(
            f"the Anthropic API does not serve model {model!r} (retired or misspelt: {e}); set "
            f"anthropic.model in conf/agent/default.yaml or pass --model (research doctor lists "
            f"the names the installed SDK knows)") from e
    except (anthropic.APIConnectionError, anthropic.APITimeoutError) as e:
        log.warning("could not reach the models endpoint to check %r (%s); going on with the "
                    "SDK's list", model, type(e).__name__)
    except anthropic.APIStatusError as e:
        if e.status_code in (401, 403):
            raise ModelUnavailable(f"the Anthropic API refused the key ({e.status_code}): check "
                                   f"ANTHROPIC_API_KEY") from e
        log.warning("models endpoint answered %s for %r; going on", e.status_code, model)


def is_retryable(err: BaseException) -> bool:
    import anthropic

    if isinstance(err, (anthropic.APIConnectionError, anthropic.APITimeoutError)):
        return True
    if isinstance(err, anthropic.APIStatusError):
        return err.status_code == 429 or err.status_code == 408 or err.status_code >= 500
    return False


class AnthropicClient:
    """`create(**params) -> Message` with retries; `take_usage()` pops tokens and cost since the
    last call; `total` holds everything spent through this client."""

    def __init__(self, cfg: AnthropicConfig, sdk: Any = None,
                 sleep: Callable[[float], None] = time.sleep):
        if sdk is None:
            import anthropic
            # our own retries (with the loop's pause on failure) replace the SDK's
            sdk = anthropic.Anthropic(max_retries=0)
        self.sdk = sdk
        self.cfg = cfg
        self.sleep = sleep
        self.total = UsageTotals()
        self._pending_tokens = 0
        self._pending_cost = 0.0

    def create(self, **params: Any) -> Any:
        params.setdefault("model", self.cfg.model)
        params.setdefault("max_tokens", self.cfg.max_tokens)
        delay = self.cfg.backoff_s
        attempts = max(1, int(self.cfg.retries))
        for attempt in range(1, attempts + 1):
            try:
                message = self.sdk.messages.create(**params)
            except Exception as e:  # noqa: BLE001 -- classified below
                import anthropic
                if not isinstance(e, anthropic.AnthropicError):
                    raise
                if not is_retryable(e):
                    raise ProposerUnavailable(f"Anthropic API refused the request "
                                              f"({type(e).__name__}: {e}); fix it and resume") from e
                if attempt == attempts:
                    raise ProposerUnavailable(f"Anthropic API failed {attempts} times "
                                              f"({type(e).__name__}: {e})") from e
                wait = delay
                asked = retry_after_s(e)
                if asked is not None:
                    wait = min(max(delay, asked), float(self.cfg.max_retry_after_s))
                log.warning("Anthropic API error (%s), retry %d/%d in %.1fs",
                            type(e).__name__, attempt, attempts - 1, wait)
                self.sleep(wait)
                delay *= 2
                continue
            self._account(message)
            return message
        raise AssertionError("unreachable")

    def _account(self, message: Any) -> None:
        usage = getattr(message, "usage", None)
        if usage is None:
            return
        counts, cost = cost_of(usage, self.cfg.prices_per_mtok)
        t = self.total
        t.input_tokens += counts["input"]
        t.output_tokens += counts["output"]
        t.cache_write_tokens += counts["cache_write"]
        t.cache_read_tokens += counts["cache_read"]
        t.cost_usd += cost
        t.calls += 1
        self._pending_tokens += sum(counts.values())
        self._pending_cost += cost

    def take_usage(self) -> tuple[int, float]:
        out = (self._pending_tokens, self._pending_cost)
        self._pending_tokens, self._pending_cost = 0, 0.0
        return out
