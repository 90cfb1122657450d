"""The parties' public mediation room pages (``/m/...``), mounted by the ``ui`` setting
(``room_ui.app:setup``). See ``docs/mediation.md``."""
