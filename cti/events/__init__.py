"""Events and integrations: the contract every subscriber reads, and how events leave the node.

What lives here: the registry of event schemas and the envelope (``registry``, the one source of truth;
``docs`` writes docs/events.md from it: ``python -m cti.events.docs``), the in-process bus with its sequence
numbers (``bus``), the one place internal facts become envelopes (``publish``), signed webhooks with their
outbox (``webhooks``), the MQTT bridge (``mqtt``) and their shared retry policy (``backoff``).

May import: ``acd``, ``ivr`` (their public names), ``cti.store`` and the top-level helpers. Never the call
path, the HTTP side or the CLI: they import this package, not the other way round.
"""
