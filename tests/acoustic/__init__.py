"""Acoustic bench tests."""
