"""Shared test helpers: real audio, the command line, sessions, a real audio server."""
