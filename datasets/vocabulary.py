"""Controlled vocabularies: how a value a buyer or a file gives finds its term.

A value matches a term when its key (:func:`term_key`) equals the key of the term's slug,
name or one of its aliases: ``UR5e``, ``ur5-e`` and ``ur5e`` all find the UR5e. A value
that finds nothing gets the closest known values as suggestions, so a typo answers with
what was probably meant.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import connection

from datasets.models import VocabularyTerm

_NOT_KEY = re.compile(r"[^0-9a-z]+")
SUGGESTIONS = 3


def term_key(value: str) -> str:
    """Lower case, letters and digits only (``"UR5-e"`` -> ``"ur5e"``)."""
    return _NOT_KEY.sub("", value.lower())


@dataclass(frozen=True)
class Vocabulary:
    """The terms of some kinds, indexed by key (read in one query)."""

    by_key: Mapping[tuple[str, str], str]  # (kind, key) -> slug
    slugs: Mapping[str, tuple[str, ...]]  # kind -> every slug, sorted

    def resolve(self, kind: str, value: str) -> str | None:
        """The slug of the term ``value`` names, or None."""
        return self.by_key.get((kind, term_key(value)))

    def suggest(self, kind: str, value: str) -> list[str]:
        """The slugs closest to ``value`` (by key), best first; at most SUGGESTIONS."""
        key = term_key(value)
        keys = {k: slug for (knd, k), slug in self.by_key.items() if knd == kind}
        close = difflib.get_close_matches(key, list(keys), n=SUGGESTIONS * 3, cutoff=0.5)
        if key:  # a prefix typed ("kinova") finds every term it starts
            close += sorted(k for k in keys if k.startswith(key) or key.startswith(k))
        out: list[str] = []
        for k in close:
            if keys[k] not in out:
                out.append(keys[k])
        return out[:SUGGESTIONS]


def vocabulary_load(kinds: Iterable[str]) -> Vocabulary:
    """Every term of ``kinds`` (one query). A slug wins over another term's alias or name."""
    return _vocabulary(VocabularyTerm.objects.filter(kind__in=list(kinds)).values_list("kind", "slug", "name", "aliases"))


# The vocabulary revision (PostgreSQL, migration 0008): read it in the caller's own statement
# (these columns from this table, row id = 1) and pass (revision, token) to vocabulary_at.
VOCABULARY_REVISION_TABLE = "datasets_vocabulary_revision"

# Per process: (database, kinds) -> ((revision, token), vocabulary read in the statement that read that state).
_kept: dict[tuple[str, frozenset[str]], tuple[tuple[int, str], Vocabulary]] = {}
_kept_lock = threading.Lock()


def vocabulary_at(kinds: Iterable[str], state: tuple[int, str]) -> Vocabulary:
    """The terms of ``kinds`` as of the vocabulary ``state`` (revision, token) the caller just read, or newer.

    Exact, never stale: the kept vocabulary answers only when it was read at that very state
    (any write to the terms moves the revision and the token); otherwise the terms are read
    again together with the revision, in one statement, and kept under the state that
    statement saw. PostgreSQL only (the revision table exists there).
    """
    kinds = frozenset(kinds)
    key = (f"{connection.alias}:{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}:{connection.settings_dict['NAME']}", kinds)
    with _kept_lock:
        kept = _kept.get(key)
    if kept is not None and kept[0] == tuple(state):
        return kept[1]
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT r.revision, r.token, t.kind, t.slug, t.name, t.aliases FROM {VOCABULARY_REVISION_TABLE} r "
            f"LEFT JOIN {VocabularyTerm._meta.db_table} t ON t.kind = ANY(%s) WHERE r.id = 1",
            [sorted(kinds)],
        )
        rows = cur.fetchall()
    # aliases come as the jsonb text Django's connection leaves for JSONField to decode
    vocab = _vocabulary((k, slug, name, json.loads(a) if isinstance(a, str) else a) for _r, _t, k, slug, name, a in rows if k is not None)
    with _kept_lock:
        _kept[key] = ((rows[0][0], rows[0][1]), vocab)
    return vocab


def _vocabulary(terms: Iterable[tuple[str, str, str, list | None]]) -> Vocabulary:
    by_key: dict[tuple[str, str], str] = {}
    slugs: dict[str, list[str]] = {}
    weak: list[tuple[tuple[str, str], str]] = []
    for kind, slug, name, aliases in terms:
        slugs.setdefault(kind, []).append(slug)
        by_key[(kind, term_key(slug))] = slug
        for other in [name, *(a for a in (aliases or []) if isinstance(a, str))]:
            weak.append(((kind, term_key(other)), slug))
    for key, slug in weak:
        by_key.setdefault(key, slug)
    return Vocabulary(by_key=by_key, slugs={k: tuple(sorted(v)) for k, v in slugs.items()})


def unknown_message(kind: str, value: str, suggestions: list[str]) -> str:
    hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    return f"unknown {kind} {value!r}{hint}"
