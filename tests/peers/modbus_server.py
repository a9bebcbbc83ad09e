#!/usr/bin/env python3
"""Modbus TCP or RTU test peer: a real pymodbus 3.16 server plus a line-protocol control port.

The integration tests start this script (through ``tests/it/peers/modbus.rs``) with the
venv interpreter ``tests/.venv/bin/python``. It serves the register tables given in a
JSON spec and keeps the ground truth the tests assert on: every request the server
decoded (unit id, function code, address, count) and every exception it answered.

Spec (all addresses are Modbus *protocol* addresses, 0-based, as on the wire)::

    {"units": {"1": {"hr": {"0": 231, "1": 5}, "ir": {}, "co": {"3": true},
                     "di": {}, "strict": false}}}

* ``hr``/``ir``: holding/input registers, values 0..65535.
* ``co``/``di``: coils/discrete inputs, booleans.
* ``strict`` false (default): each register table is one block from address 0 up to the
  highest address given; unlisted addresses in between read as 0. ``strict`` true: only
  the listed register addresses exist, anything else answers exception 0x02. Bit tables
  are always blocks (pymodbus keeps bits in 16-bit words).
* A table with no entries answers every read with exception 0x02.
* A unit id that is not in the spec answers exception 0x04 (device failure), as
  pymodbus does for an unknown device. Unit 0 in the spec is a catch-all for every
  unit id not listed.

The new SimData/SimDevice API is used directly (not the deprecated ModbusDeviceContext
and ModbusSequentialDataBlock, whose block start 1 maps to protocol address 0), so the
addresses in the spec are the addresses on the wire, with no offset.

Control protocol: TCP on ``--control-port``, one command per line, one JSON object per
reply line (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``):

* ``ping``
* ``counts`` -> ``requests``/``responses``/``exceptions``: ``{unit: {fc: n}}``
  (string keys), plus ``total``.
* ``requests`` -> ``requests``: list of ``{unit, fc, address, count}`` in arrival order
  (the last 100000).
* ``reset`` -> clears counts and the request log.
* ``set hr|ir|co|di <unit> <addr> <v1,v2,...>`` -> writes values (bits as 0/1).
* ``get hr|ir|co|di <unit> <addr> <count>`` -> ``values``.
* ``dump`` -> ``spec``: the spec with the current values (to restart with the same state).

Once both ports listen, the script prints ``READY <modbus_port> <control_port>`` on
stdout. If a port is taken it exits with status 98 and says "address in use".

Modbus RTU: with ``--serial PATH`` (one end of a ``socat`` pty pair: an RS-485 bus for
tests) the server speaks RTU on that serial port instead of TCP (``--baudrate``,
``--parity N|E|O``, ``--stopbits``; default 8N2: a pty refuses parity on some
kernels, and 8N2 has the same 11-bit character as the Modbus default 8E1) and prints ``READY <PATH> <control_port>``. Like a real bus, a unit
id that is not in the spec gets no answer at all (pymodbus ``ignore_missing_devices``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import logging
import socket
import sys

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FC_OF_TABLE = {"co": 1, "di": 2, "hr": 3, "ir": 4}
EXIT_ADDR_IN_USE = 98
MAX_LOG = 100_000


class Stats:
    """Ground truth: what the server decoded and what it answered."""

    def __init__(self) -> None:
        self.requests: dict[int, collections.Counter] = collections.defaultdict(
            collections.Counter
        )
        self.responses: dict[int, collections.Counter] = collections.defaultdict(
            collections.Counter
        )
        self.exceptions: dict[int, collections.Counter] = collections.defaultdict(
            collections.Counter
        )
        self.log: collections.deque = collections.deque(maxlen=MAX_LOG)

    def trace_pdu(self, sending: bool, pdu):
        """pymodbus hook: called with every PDU received (False) or sent (True)."""
        try:
            unit = int(pdu.dev_id)
            fc = int(pdu.function_code)
            if sending:
                self.responses[unit][fc & 0x7F] += 1
                if fc & 0x80:
                    self.exceptions[unit][fc & 0x7F] += 1
            else:
                self.requests[unit][fc] += 1
                count = int(getattr(pdu, "count", 0) or 0)
                if fc in (5, 6):
                    count = 1
                elif fc == 15 and not count:
                    count = len(getattr(pdu, "bits", []) or [])
                elif fc == 16 and not count:
                    count = len(getattr(pdu, "registers", []) or [])
                self.log.append(
                    {
                        "unit": unit,
                        "fc": fc,
                        "address": int(getattr(pdu, "address", 0)),
                        "count": count,
                    }
                )
        except Exception as exc:  # a tracing fault must never break serving
            print(f"trace_pdu failed: {exc!r}", file=sys.stderr, flush=True)
        return pdu

    def reset(self) -> None:
        self.requests.clear()
        self.responses.clear()
        self.exceptions.clear()
        self.log.clear()

    def counts(self) -> dict:
        def plain(table):
            return {
                str(unit): {str(fc): n for fc, n in sorted(c.items())}
                for unit, c in sorted(table.items())
            }

        return {
            "requests": plain(self.requests),
            "responses": plain(self.responses),
            "exceptions": plain(self.exceptions),
            "total": sum(sum(c.values()) for c in self.requests.values()),
        }


def register_blocks(table: dict[int, int], strict: bool) -> list[SimData]:
    if not table:
        return [SimData(0, datatype=DataType.INVALID)]
    for addr, value in table.items():
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"register {addr}: value {value} is not 0..65535")
    if not strict:
        top = max(table)
        return [
            SimData(
                0,
                values=[table.get(a, 0) for a in range(top + 1)],
                datatype=DataType.REGISTERS,
            )
        ]
    blocks: list[SimData] = []
    run_start, run = None, []
    for addr in sorted(table):
        if run and addr == run_start + len(run):
            run.append(table[addr])
            continue
        if run:
            blocks.append(SimData(run_start, values=run, datatype=DataType.REGISTERS))
        run_start, run = addr, [table[addr]]
    blocks.append(SimData(run_start, values=run, datatype=DataType.REGISTERS))
    return blocks


def bit_blocks(table: dict[int, bool]) -> list[SimData]:
    if not table:
        # pymodbus cannot mark bits invalid; deny_empty_bit_tables answers 0x02 instead.
        return [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    top = max(table)
    return [
        SimData(
            0,
            values=[bool(table.get(a, False)) for a in range(top + 1)],
            datatype=DataType.BITS,
        )
    ]


def parse_spec(spec: dict) -> dict[int, dict]:
    units: dict[int, dict] = {}
    for unit_key, unit in spec.get("units", {}).items():
        unit_id = int(unit_key)
        if not 0 <= unit_id <= 255:
            raise ValueError(f"unit id {unit_id} is not 0..255")
        parsed = {"strict": bool(unit.get("strict", False))}
        for name in ("hr", "ir"):
            parsed[name] = {int(a): int(v) for a, v in unit.get(name, {}).items()}
        for name in ("co", "di"):
            parsed[name] = {int(a): bool(v) for a, v in unit.get(name, {}).items()}
        units[unit_id] = parsed
    if not units:
        raise ValueError("spec has no units")
    return units


async def deny_empty_bit_tables(
    empty_fcs: frozenset, function_code, _start, _address, _count, _regs, _values
):
    """SimDevice action: a bit table with no entries answers exception 0x02."""
    return ExcCodes.ILLEGAL_ADDRESS if function_code in empty_fcs else None


def build_devices(units: dict[int, dict]) -> list[SimDevice]:
    devices = []
    for unit_id, unit in sorted(units.items()):
        empty_fcs = frozenset(
            fc
            for table, fcs in (("co", (1, 5, 15)), ("di", (2,)))
            if not unit[table]
            for fc in fcs
        )
        devices.append(
            SimDevice(
                unit_id,
                simdata=(
                    bit_blocks(unit["co"]),
                    bit_blocks(unit["di"]),
                    register_blocks(unit["hr"], unit["strict"]),
                    register_blocks(unit["ir"], unit["strict"]),
                ),
                action=functools.partial(deny_empty_bit_tables, empty_fcs)
                if empty_fcs
                else None,
            )
        )
    return devices


class SilentForMissingIds:
    """Datastore wrapper for RTU: a unit id not in the spec raises NoSuchIdException, so
    the server (``ignore_missing_devices``) stays silent, as an absent slave on a real
    bus does. (SimCore itself answers unknown ids with exception 0x04.)"""

    def __init__(self, inner, ids: set[int]):
        self.inner = inner
        self.ids = ids

    def device_ids(self) -> list[int]:
        return self.inner.device_ids()

    def _check(self, device_id: int) -> None:
        if device_id not in self.ids and 0 not in self.ids:
            raise NoSuchIdException(f"device_id - {device_id} is not on this bus")

    async def async_getValues(self, device_id, func_code, address, count=1):
        self._check(device_id)
        return await self.inner.async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id, func_code, address, values):
        self._check(device_id)
        return await self.inner.async_setValues(device_id, func_code, address, values)


class Control:
    """The control port: counts, request log, runtime register changes."""

    def __init__(self, server: ModbusTcpServer, stats: Stats, units: dict[int, dict]):
        self.server = server
        self.stats = stats
        self.units = units

    async def _read(self, table: str, unit: int, addr: int, count: int):
        values = await self.server.context.async_getValues(
            unit, FC_OF_TABLE[table], addr, count
        )
        if not isinstance(values, list):
            raise ValueError(
                f"{table} unit {unit} address {addr} count {count}: exception {int(values)}"
            )
        return [int(v) for v in values]

    async def _write(self, table: str, unit: int, addr: int, values: list) -> None:
        if unit not in self.units:
            raise ValueError(f"unit {unit} is not in the spec")
        if table in ("co", "di"):
            values = [bool(int(v)) for v in values]
        else:
            values = [int(v) for v in values]
            for v in values:
                if not 0 <= v <= 0xFFFF:
                    raise ValueError(f"value {v} is not 0..65535")
        result = await self.server.context.async_setValues(
            unit, FC_OF_TABLE[table], addr, values
        )
        if result is not None:
            raise ValueError(
                f"{table} unit {unit} address {addr}: exception {int(result)} "
                "(address outside the table?)"
            )

    async def _dump(self) -> dict:
        out = {}
        for unit_id, unit in self.units.items():
            dumped = {"strict": unit["strict"]}
            for table in ("hr", "ir", "co", "di"):
                known = unit[table]
                if not known:
                    dumped[table] = {}
                    continue
                if table in ("co", "di") or not unit["strict"]:
                    addrs = range(max(known) + 1)
                    values = await self._read(table, unit_id, 0, len(addrs))
                    dumped[table] = {
                        str(a): (bool(v) if table in ("co", "di") else v)
                        for a, v in zip(addrs, values)
                    }
                else:
                    dumped[table] = {
                        str(a): (await self._read(table, unit_id, a, 1))[0]
                        for a in sorted(known)
                    }
            out[str(unit_id)] = dumped
        return {"units": out}

    async def execute(self, line: str) -> dict:
        words = line.split()
        if not words:
            raise ValueError("empty command")
        cmd = words[0]
        if cmd == "ping":
            return {}
        if cmd == "counts":
            return self.stats.counts()
        if cmd == "requests":
            return {"requests": list(self.stats.log)}
        if cmd == "reset":
            self.stats.reset()
            return {}
        if cmd == "dump":
            return {"spec": await self._dump()}
        if cmd in ("set", "get") and len(words) == 5 and words[1] in FC_OF_TABLE:
            table, unit, addr = words[1], int(words[2]), int(words[3])
            if cmd == "set":
                await self._write(table, unit, addr, words[4].split(","))
                return {}
            return {"values": await self._read(table, unit, addr, int(words[4]))}
        raise ValueError(f"unknown command {line!r}")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").strip()
                try:
                    reply = {"ok": True, **(await self.execute(text))}
                except Exception as exc:  # reported to the test, never fatal
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="Modbus TCP port")
    parser.add_argument("--serial", help="serve Modbus RTU on this serial port instead")
    parser.add_argument("--baudrate", type=int, default=19200)
    parser.add_argument("--parity", default="N", choices=["N", "E", "O"])
    parser.add_argument("--stopbits", type=int, default=2, choices=[1, 2])
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--spec", required=True, help="JSON spec file")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with open(args.spec, encoding="utf-8") as f:
        units = parse_spec(json.load(f))

    for port in ([] if args.serial else [args.port]) + [args.control_port]:
        if not port_free(args.host, port):
            print(f"{args.host}:{port}: address in use", file=sys.stderr, flush=True)
            return EXIT_ADDR_IN_USE

    stats = Stats()
    if args.serial:
        server = ModbusSerialServer(
            build_devices(units),
            framer=FramerType.RTU,
            port=args.serial,
            baudrate=args.baudrate,
            parity=args.parity,
            stopbits=args.stopbits,
            ignore_missing_devices=True,
            reconnect_delay=0.2,
            trace_pdu=stats.trace_pdu,
        )
        server.context = SilentForMissingIds(server.context, set(units))
    else:
        server = ModbusTcpServer(
            build_devices(units),
            address=(args.host, args.port),
            trace_pdu=stats.trace_pdu,
        )
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        print(f"{args.host}:{args.port}: address in use ({exc})", file=sys.stderr, flush=True)
        return EXIT_ADDR_IN_USE
    control = Control(server, stats, units)
    try:
        ctl = await asyncio.start_server(control.handle, args.host, args.control_port)
    except OSError as exc:
        print(
            f"{args.host}:{args.control_port}: address in use ({exc})",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_ADDR_IN_USE
    print(f"READY {args.serial or args.port} {args.control_port}", flush=True)
    async with ctl:
        await server.serving
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
