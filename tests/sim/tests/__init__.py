"""Tests of the simulated GPU cluster (tests/sim)."""
