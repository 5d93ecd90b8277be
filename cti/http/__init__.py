"""The HTTP side: the admin API and its OpenAPI document, tokens, the pages, /metrics and the HTTP guard.

What lives here: the admin API routes (``api``, ``webhook_routes``) and the OpenAPI document (``openapi``, the
source of docs/api.md), signed tokens (``tokens``), the pages served from ``cti/web/`` (``pages``), the
Prometheus collectors (``metrics``) and the connection, header and body limits every request passes
(``guard``). The WebSocket gateway is its own package (``cti.gateway``); the features' own routes live with
them (``cti.qa.routes``, ``cti.reports.routes``, ``cti.staffing.routes``, ``cti.adherence.routes``).

May import: ``cti.floor`` (the ``Control`` port), ``cti.events``, ``cti.store`` and the top-level helpers.
Never the call path directly: calls are reached through the ``Control`` port.
"""
