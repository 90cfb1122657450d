"""The core of the citizen hotline: tickets, workflow, routing, SLA, queues and jobs.

Nothing in this package imports ``channels``, ``ivr`` or ``agent_ui``; the one
exception is :mod:`callcenter.bootstrap`, the composition root that
builds the runtime and the server from the settings and loads the adapters they
name. ``docs/layout.md`` maps the package.
"""

__version__ = "0.1.0"
