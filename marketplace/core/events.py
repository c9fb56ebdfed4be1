"""Domain events: how a lower app makes a higher one react without importing it.

An app that changes something others care about publishes a small typed event
(:class:`DomainEvent` subclasses live in each app's ``events.py``). Delivery happens after
the surrounding transaction commits, never inside it: a reaction never sees, and never
acts on, a change that may still roll back. Handlers are registered in one place, the
project's ``marketplace/reactions.py``, where a reader sees every reaction in the system.

A handler that fails does not undo the committed change that caused it. The failure is
logged, and the periodic reconciliation (``workers.sweeper`` for versions stuck in the
pipeline, ``listings_reconcile`` for listings) repairs whatever the lost reaction left
behind. With ``EVENTS_RAISE_HANDLER_ERRORS`` (the test profile) the error propagates
instead, so a broken handler fails the test that triggered it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every event: immutable, ids and plain values only (no model instances), so
    the handler reads the committed state itself."""


Handler = Callable[[DomainEvent], None]

_handlers: dict[type[DomainEvent], list[Handler]] = defaultdict(list)


def subscribe(event_type: type[DomainEvent], handler: Handler) -> None:
    """Register ``handler`` for ``event_type`` (idempotent). Called from the project's
    reactions module at start-up."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def handlers_for(event_type: type[DomainEvent]) -> tuple[Handler, ...]:
    return tuple(_handlers.get(event_type, ()))


def registered() -> dict[type[DomainEvent], tuple[Handler, ...]]:
    """Every event type with its handlers (for the docs and the wiring tests)."""
    return {event_type: tuple(handlers) for event_type, handlers in _handlers.items() if handlers}


def publish(event: DomainEvent) -> None:
    """Deliver ``event`` to its handlers once the current transaction commits (at once
    when no transaction is open)."""
    transaction.on_commit(partial(_deliver, event))


def _deliver(event: DomainEvent) -> None:
    for handler in handlers_for(type(event)):
        try:
            handler(event)
        except Exception:
            if getattr(settings, "EVENTS_RAISE_HANDLER_ERRORS", False):
                raise
            log.exception("handler %s failed on %r; the reconciliation will repair its effect", _name(handler), event)


def _name(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"


@contextmanager
def suspended(event_type: type[DomainEvent], handler: Handler) -> Iterator[None]:
    """Take one handler off for the duration (an operator's switch, and how the tests
    show that the reconciliation repairs a lost reaction)."""
    handlers = _handlers[event_type]
    index = handlers.index(handler)
    handlers.remove(handler)
    try:
        yield
    finally:
        handlers.insert(index, handler)
