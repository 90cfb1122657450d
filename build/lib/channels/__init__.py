"""Channel adapters: one package per way a citizen reaches the hotline.

Each package holds one :class:`callcenter.channel.Channel` subclass, its texts
in both languages, and its page in ``docs/channels/``. The ``channels``
setting names the ones to run.
"""
