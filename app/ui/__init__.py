"""Widgets only: they show what the controller tells them and forward user input as intents."""
