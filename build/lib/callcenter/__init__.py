"""The core of the citizen hotline: tickets, workflow, routing, SLA, queues and jobs.

Nothing in this package imports ``channels``, ``ivr`` or ``agent_ui``; the one
exception is :mod:`callcenter.server`, the composition root that loads the
adapters named in the settings.
"""

__version__ = "0.1.0"
