"""Actions: the only write paths (DESIGN rule 2).

Each action is an async function that takes the runtime, its arguments and a
keyword-only ``actor``; in one transaction it checks, changes rows, appends an
audit event and enqueues follow-up jobs; live events go out after commit. Web
handlers, channel adapters, the IVR and the CLI call actions; none of them
writes tables.
"""
