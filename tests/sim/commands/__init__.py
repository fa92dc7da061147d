"""The shell commands a simulated node understands (see docs/remote-commands.md)."""
