"""Tests of the Home Assistant integration: the loaded entry, recovery, voice, validators."""
