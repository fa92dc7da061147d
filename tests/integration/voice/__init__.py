"""Tests of the Wyoming voice bridges."""
