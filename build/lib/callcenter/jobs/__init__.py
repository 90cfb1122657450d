"""Durable jobs: the outbox (DESIGN rule 4).

Side effects (SMS, Telegram replies, reminders, surveys) are rows in the
``jobs`` table, written in the same transaction as the change that caused
them. A driver runs them after commit: :class:`~callcenter.jobs.executor.InProcessDriver`
by default, Celery when configured. Both call the same
:class:`~callcenter.jobs.executor.JobRunner`, so the rules are one: a job is
claimed with a lease, retried with exponential backoff, and left ``dead`` after
its last attempt; a lease that runs out (its process died) lets another
process claim it again; a ``done`` job is never claimed again.
"""
