"""The node around its calls: what admits, starts, holds and records calls, and what the ACD says about them.

What lives here: the registry of live calls with admission and drain, which builds the calls' ports once
(``controller``), what implements those ports (``phones``: bindings, SRTP policy, phone INVITEs; ``transfers``:
transfer targets; ``records``; ``routing``), the trunks' front door
(``trunks``, ``inbound``, ``admission``), agents' phone registrations (``registration``), the SIP endpoint's
assembly (``sipcore``), the one ACD adapter (``routing``) and what its events become (``acdevents``), and the
record writer that commits CDRs, queue legs and their outbox events together (``records``).

May import: ``sip``, ``acd``, ``ivr``, ``cti.call``, ``cti.events``, ``cti.store`` and the top-level helpers
(``cti.clock``, ``cti.errors``, ``cti.ids``). Never the HTTP side, the floor operations or the CLI.
"""
