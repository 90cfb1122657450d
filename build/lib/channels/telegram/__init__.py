"""Telegram: citizens write to the hotline's bot (see docs/channels/telegram.md).

Name it in the settings as ``channels.telegram:TelegramChannel``.
"""

import os

# opt in to the Bot API library's coming behaviour: durations as timedelta
os.environ.setdefault("PTB_TIMEDELTA", "1")

from channels.telegram.adapter import TelegramChannel

__all__ = ["TelegramChannel"]
