"""Floor operations: what supervisors, operators and agents do to agents and calls, and what they are told.

What lives here: the ``Control`` port the API and the gateway use (``control``) and its implementation over
the registry (``operations``), adding and changing agents at run time (``agent_admin``), broadcast notices with
read receipts (``notices``), VIP, surge and threshold alerts (``alerts``), and a caller's previous contacts
for the screen pop (``contacts``).

May import: ``acd``, ``cti.call``, ``cti.node``, ``cti.events``, ``cti.store`` and the top-level helpers.
Never the HTTP side or the CLI.
"""
