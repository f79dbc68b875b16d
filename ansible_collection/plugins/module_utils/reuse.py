# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Connections kept open across the items of one task: one authority client, one store per target.

The credential module run per item opens an authority client (its HTTP session and the
authority's JWKS) and a store (its Vault login) and closes both at the end. The action plugin,
when it runs the work on the controller, hands :func:`ensure_credential` one
:class:`Connections` that lives as long as its worker process: the items of one task's
``loop`` run in that one process, so every item after the first reuses the session, the
JWKS and the Vault token. Only the transport is reused: each item still reads its credential
and its certificate's record at the authority, and the one judge decides each item.

The key of a store is its scheme, every option it was opened with and the process environment
(the Vault variables included), so two items that name another Vault, token or namespace never
share a client. After a failed item everything is closed: the next item starts afresh.
Nothing here is logged; the keys live in memory only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
from contextlib import contextmanager

try:
    import passgeni_core as core
except ImportError:
    core = None


def _key(*parts):
    # Options are strings, numbers, booleans and mappings of them: JSON orders them stably.
    return json.dumps(parts, sort_keys=True, default=repr)


class Connections(object):
    """Authority clients and stores opened once and reused until :meth:`close`."""

    def __init__(self):
        self._clients = {}
        self._stores = {}

    @contextmanager
    def authority(self, config):
        """An ``AuthorityClient`` for ``config`` (a served authority's is kept open)."""
        if config.url is None:
            # url: embedded starts an authority in-process: nothing to keep across items.
            with core.connect(config) as client:
                yield client
            return
        key = _key(config.url, config.api_key, config.timeout, config.issuer)
        client = self._clients.get(key)
        if client is None:
            client = core.AuthorityClient(
                config.url, config.api_key, timeout=config.timeout, issuer=config.issuer
            )
            self._clients[key] = client
        yield client

    def store(self, uri, settings):
        """The store for ``uri``'s scheme opened with ``settings`` (kept open; never closed here)."""
        # A backend opened without ``environ`` reads the process environment (the task's
        # ``environment``, which may differ per item): it is part of the key too.
        key = _key(uri.scheme, settings, sorted(os.environ.items()))
        store = self._stores.get(key)
        if store is None:
            store = core.open_store(uri, **settings)
            self._stores[key] = store
        return store

    def close(self):
        """Close every client and store (after a failure, so the next item starts afresh)."""
        items = list(self._stores.values()) + list(self._clients.values())
        self._stores.clear()
        self._clients.clear()
        for item in items:
            try:
                item.close()
            except Exception:  # pylint: disable=broad-except
                pass  # closing a broken connection: nothing left to save
