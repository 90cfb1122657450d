"""The parties' public mediation room pages (``/m/...``), mounted by the ``ui`` setting
(``agent_ui.rooms.app:setup``). See ``docs/mediation.md``."""
