"""Fuzzing the reply parsers: any byte string gives a clean value or a clear InstrumentError."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labpnn.drivers.metasurface import bits_to_hex, hex_to_bits
from labpnn.drivers.vna.replies import (
    parse_ascii_values,
    parse_bool_reply,
    parse_error_entry,
    parse_idn,
    parse_ieee_block,
    parse_number,
)
from labpnn.errors import InstrumentError
from labpnn.mock_instruments.scpi import ieee_block

CMD = "CALC1:DATA:SDAT?"
FUZZ = settings(max_examples=300, deadline=None)


def clean_or_instrument_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except InstrumentError as exc:
        assert CMD in str(exc) or "IDN" in str(exc) or "GET?" in str(exc)
        return None


@FUZZ
@given(st.binary(max_size=200), st.one_of(st.none(), st.integers(0, 30)))
def test_block_parser_survives_any_bytes(raw, n_values):
    values = clean_or_instrument_error(parse_ieee_block, raw, CMD, "<f8", n_values)
    if values is not None:
        assert np.isfinite(values).all()
        assert n_values is None or len(values) == n_values


# What an instrument can send as data: SCPI reserves |x| >= 9.9E37 for NaN and infinity.
DATA_FLOATS = st.floats(min_value=-1e37, max_value=1e37, allow_nan=False)


@FUZZ
@given(st.lists(DATA_FLOATS, max_size=40), st.booleans())
def test_block_parser_round_trips_what_the_mock_sends(values, newline):
    raw = ieee_block(np.asarray(values, dtype="<f8").tobytes()) + (b"\n" if newline else b"")
    out = parse_ieee_block(raw, CMD, "<f8", len(values))
    assert np.array_equal(out, np.asarray(values, dtype=float))


@FUZZ
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
       st.integers(0, 400), st.binary(max_size=20))  # fmt: skip
def test_corrupted_valid_blocks_never_crash(values, cut, tail):
    raw = ieee_block(np.asarray(values, dtype="<f8").tobytes())
    mangled = raw[: min(cut, len(raw))] + tail
    clean_or_instrument_error(parse_ieee_block, mangled, CMD, "<f8", len(values))


@FUZZ
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_text_parsers_survive_anything(text):
    for parser in (
        lambda t: parse_ascii_values(t, CMD),
        lambda t: parse_ascii_values(t, CMD, 4),
        lambda t: parse_error_entry(t, CMD),
        lambda t: parse_number(t, CMD),
        lambda t: parse_bool_reply(t, CMD),
        parse_idn,
    ):
        clean_or_instrument_error(parser, text)


@FUZZ
@given(st.integers(-1000, 1000), st.text(alphabet=st.characters(blacklist_characters='"'),
                                          max_size=40))  # fmt: skip
def test_error_entries_round_trip(code, message):
    assert parse_error_entry(f'{code:+d},"{message}"') == (code, message)


@FUZZ
@given(st.text(max_size=20), st.integers(1, 64))
def test_metasurface_hex_parser_survives_anything(text, n_bits):
    bits = clean_or_instrument_error(hex_to_bits, text, n_bits)
    if bits is not None:
        assert bits.shape == (n_bits,)


@FUZZ
@given(st.lists(st.booleans(), min_size=1, max_size=80))
def test_metasurface_hex_round_trips(bits):
    bits = np.array(bits)
    assert np.array_equal(hex_to_bits(bits_to_hex(bits), len(bits)), bits)
