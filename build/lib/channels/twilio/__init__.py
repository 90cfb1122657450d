"""Twilio: SMS (``channels.twilio.sms``) and Voice (``channels.twilio.voice``).

Both check webhooks with :mod:`channels.twilio.webhooks` and use the official
``twilio`` package. See docs/channels/twilio.md.
"""
