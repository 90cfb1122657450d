"""The staff's browser pages and their websocket (see docs/layout.md)."""
