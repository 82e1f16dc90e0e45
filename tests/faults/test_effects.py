"""Fault effects: the address that refuses every connection."""

from __future__ import annotations

import socket

import pytest

from kansoku.faults.effects import refusing_address


def test_refusing_address_refuses() -> None:
    host, port = refusing_address()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=1)
