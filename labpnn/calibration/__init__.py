"""Calibration maths shared by procedures: pure functions over measured data."""
