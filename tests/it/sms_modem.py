#!/usr/bin/env python3
"""A scripted LTE modem on a serial port (the device end of a socat pty), for the SMS
sink's integration test. No modem exists on the test machines; this responder behaves
as the specifications and a real modem's manual say, and every PDU the gateway sends is
decoded by an independent decoder (PyPI `smspdudecoder`), not by our code.

Behaviour and where it comes from:
- Framing: ITU-T V.250 §5.7.1 / 3GPP TS 27.007 §4.1 (ATV1): every response line is
  `<CR><LF>text<CR><LF>`; a command line ends with `<CR>`. Echo is on until `ATE0`
  (V.250 §6.2.4, E1 is the factory default; Quectel EC25 AT Commands Manual V2.0 §2.1).
- `AT+CMGS=<length>` (3GPP TS 27.005 §3.5.1, PDU mode): the modem answers the prompt
  `<CR><LF>> ` (greater-than, space), then reads the PDU in hex up to Ctrl-Z (0x1A;
  ESC 0x1B cancels); `<length>` counts the TPDU octets only, not the SMSC address
  octets. A length that does not match the PDU is refused with `+CMS ERROR: 304`
  (invalid PDU mode parameter, TS 27.005 §3.2.5). Success: `+CMGS: <mr>` then `OK`.
  The SIM7600 Series AT Command Manual (AT+CMGS) gives the same sequence.
- `+CMS ERROR: <err>` codes from TS 27.005 §3.2.5 (331 no network service, 304 invalid
  PDU mode parameter); `+CME ERROR` from TS 27.007 §9.2.
- Unsolicited result codes (before the `> ` prompt as well; TS 27.005 §3.4.1 `+CMTI: <mem>,<index>` and, PDU mode,
  `+CDS: <length><CR><LF><pdu>`; TS 27.007 §10.1.22 `+CEREG: <stat>`; V.250 `RING`)
  are sent in the middle of replies, as the SIM7600 and EC25 do when an event
  coincides with a command (EC25 manual §1.4: URCs are output between responses unless
  `AT+QURCCFG` routes them elsewhere).
- `AT+CEREG?` answers `+CEREG: <n>,<stat>` (TS 27.007 §10.1.22), `AT+CSQ` answers
  `+CSQ: <rssi>,<ber>` (§8.5), `AT+CPIN?` `+CPIN: READY` (§8.3), `AT+CMGL=4` lists
  stored texts `+CMGL: <index>,<stat>,[<alpha>],<length><CR><LF><pdu>`, `AT+CMGR=<i>`
  answers `+CMGR: <stat>,[<alpha>],<length><CR><LF><pdu>` (TS 27.005 §3.4.2, §3.4.3).
- `ATD<number>;` (V.250 §6.3.1 with `;` for voice, TS 27.007 §6.2): `OK` at once, as
  the EC25 and SIM7600 do for a voice call; `AT+CHUP` (TS 27.007 §6.5) hangs up.

Control (the test writes the file named by --control): `text <+number> <text>` (a
text arrives from that number: stored at a new index and announced by `+CMTI`, TS 27.005
§3.4.1; the control goes back to `normal`), `normal`, `error` (every command
answered `ERROR`), `silent` (no answer at all). The first `--cms-first` AT+CMGS
commands are refused with `+CMS ERROR: 331`.

Log (--log): one JSON object per line for everything the test checks.
"""

import argparse
import json
import os
import sys
import time

import serial
from smspdudecoder.fields import SMSSubmit
from io import StringIO

ap = argparse.ArgumentParser()
ap.add_argument("--port", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--control", required=True)
ap.add_argument("--cms-first", type=int, default=0)
args = ap.parse_args()

log = open(args.log, "a", buffering=1)


def note(**kw):
    kw["t"] = time.time()
    log.write(json.dumps(kw, ensure_ascii=False) + "\n")


port = serial.Serial(args.port, 115200, timeout=0.05)
echo = True
cmgf = 1  # text mode is the default after power-on (TS 27.005 §3.2.3)
mr = 0
cmgs = 0
stored = {
    # A text stored before start: SMS-DELIVER, SMSC +27381000015, from 27838890001,
    # 7-bit "hellohello" (the classic worked example of TS 23.040 / 23.038 packing).
    1: "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
}


def deliver_ucs2(sender_semi_octets, text, digits=11):
    """An SMS-DELIVER (TS 23.040 §9.2.2.1) with no SMSC (00), first octet 0x04
    (MTI deliver, no more messages), international sender, DCS 0x08 (UCS-2)."""
    ud = text.encode("utf-16-be")
    return ("00" + "04" + "%02X" % digits + "91" + sender_semi_octets + "00" + "08"
            + "52104211450000" + "%02X" % len(ud) + ud.hex().upper())


def semi_octets(digits):
    """An address in semi-octets (TS 23.040 §9.1.2.3): digit pairs swapped, an odd
    count padded with F."""
    if len(digits) % 2:
        digits += "F"
    return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))


# The text that arrives with +CMTI: "OK 123" from +84912345678.
stored[2] = deliver_ucs2("4819325476F8", "OK 123")


def control():
    try:
        with open(args.control) as f:
            return f.read().strip() or "normal"
    except FileNotFoundError:
        return "normal"


def send(*lines, final="OK"):
    out = b""
    for l in lines:
        out += b"\r\n" + l.encode() + b"\r\n"
    if final is not None:
        out += b"\r\n" + final.encode() + b"\r\n"
    port.write(out)
    port.flush()


def status_report(ref):
    """SMS-STATUS-REPORT (TS 23.040 §9.2.2.3): no SMSC, first octet 0x06, TP-MR, the
    recipient +84912345678, SCTS, DT, TP-ST 0x00 (received by the SME)."""
    tpdu = "06" + "%02X" % ref + "0B91" + "4819325476F8" + "52104211450000" + "52104211450500" + "00"
    return len(tpdu) // 2, "00" + tpdu


def read_until(stop_bytes, deadline):
    buf = b""
    while time.time() < deadline:
        b = port.read(1)
        if not b:
            continue
        if b in stop_bytes:
            return buf, b
        buf += b
    return buf, None


def handle(cmd):
    global echo, mr, cmgs, cmgf
    mode = control()
    note(cmd=cmd, mode=mode)
    if mode == "silent":
        return
    if echo:
        port.write(cmd.encode() + b"\r")
    if mode == "error":
        send(final="ERROR")
        return
    u = cmd.upper()
    if u in ("AT", "AT+CMEE=1", "AT+CEREG=1", "AT+CREG=1") or u.startswith("AT+CNMI="):
        send()
    elif u in ("AT+CMGF=0", "AT+CMGF=1"):
        cmgf = int(u[-1])
        send()
    elif u == "ATE0":
        echo = False
        send()
    elif u == "AT+CMGF?":
        send("+CMGF: %d" % cmgf)
    elif u == "AT+CPIN?":
        send("+CPIN: READY")
    elif u == "AT+CEREG?":
        # A new text arrives while the reply is being written.
        port.write(b"\r\n+CEREG: 1,1\r\n\r\n+CMTI: \"SM\",2\r\n\r\nOK\r\n")
    elif u == "AT+CREG?":
        send("+CREG: 1,1")
    elif u == "AT+CSQ":
        port.write(b"\r\n+CSQ: 20,99\r\n\r\nRING\r\n\r\nOK\r\n")
    elif u == "AT+CMGL=4":
        lines = []
        for i in sorted(stored):
            if i == 1:
                lines += ["+CMGL: 1,1,,28", stored[1]]
        send(*lines)
    elif u.startswith("AT+CMGR="):
        i = int(u.split("=")[1])
        if i in stored:
            pdu = stored[i]
            send("+CMGR: 0,,%d" % (len(pdu) // 2 - 1 - int(pdu[:2], 16)), pdu)
        else:
            send(final="+CMS ERROR: 321")  # invalid memory index
    elif u.startswith("AT+CMGD="):
        i = int(u.split("=")[1])
        note(deleted=i)
        stored.pop(i, None)
        send()
    elif u.startswith("AT+CMGS=") and cmgf == 1:
        # Text mode: the argument would be taken as a phone number and the PDU as text.
        note(cmgs_in_text_mode=cmd)
        send(final="+CMS ERROR: 305")
    elif u.startswith("AT+CMGS="):
        length = int(u.split("=")[1])
        # A registration URC just before the prompt (the cell changed meanwhile).
        port.write(b"\r\n+CEREG: 1\r\n\r\n> ")
        port.flush()
        body, stop = read_until((b"\x1a", b"\x1b"), time.time() + 10)
        if stop != b"\x1a":
            note(cmgs_cancelled=True)
            send(final="OK" if stop == b"\x1b" else "+CMS ERROR: 332")
            return
        pdu = body.decode().strip()
        smsc = int(pdu[:2], 16)
        tpdu_len = len(pdu) // 2 - 1 - smsc
        cmgs += 1
        if tpdu_len != length:
            note(bad_length=True, said=length, actual=tpdu_len, pdu=pdu)
            send(final="+CMS ERROR: 304")
            return
        if cmgs <= args.cms_first:
            note(refused=pdu)
            send(final="+CMS ERROR: 331")
            return
        sms = SMSSubmit.decode(StringIO(pdu))
        header = sms["user_data"]["header"]
        concat = None
        for el in (header or {}).get("elements", []):
            if el["iei"] in (0x00, 0x08):
                concat = el["data"]
        mr = (mr + 1) % 256
        note(
            pdu=pdu,
            mr=mr,
            recipient=("+" if sms["recipient"]["toa"]["ton"] == "international" else "")
            + sms["recipient"]["number"],
            content=sms["user_data"]["data"],
            encoding=sms["dcs"]["encoding"],
            srr=sms["header"]["srr"],
            concat=concat,
        )
        # The delivery report of this part arrives in the middle of the reply.
        n, sr = status_report(mr)
        port.write(("\r\n+CMGS: %d\r\n\r\n+CDS: %d\r\n%s\r\n\r\nOK\r\n" % (mr, n, sr)).encode())
    elif u.startswith("ATD") and u.endswith(";"):
        note(call=cmd[3:-1])
        send()
    elif u in ("AT+CHUP", "ATH"):
        note(hangup=True)
        send()
    else:
        send(final="ERROR")
    port.flush()


note(ready=True)
print("modem ready", flush=True)
buf = b""
while True:
    b = port.read(64)
    if not b:
        c = control()
        if c.startswith("text "):
            _, number, body = c.split(" ", 2)
            digits = number.lstrip("+")
            i = max([9] + list(stored)) + 1
            stored[i] = deliver_ucs2(semi_octets(digits), body, len(digits))
            with open(args.control, "w") as f:
                f.write("normal")
            note(incoming=i, sender=number, text=body)
            port.write(b'\r\n+CMTI: "SM",%d\r\n' % i)
            port.flush()
        if c == "reset":
            # The modem restarts on its own (a power glitch, a firmware watchdog): it
            # comes back with its defaults, echo on and text mode, and says RDY (Quectel
            # EC25 manual §1.4: "RDY" once the module is ready).
            echo, cmgf = True, 1
            with open(args.control, "w") as f:
                f.write("normal")
            note(reset=True)
            port.write(b"\r\nRDY\r\n")
        continue
    buf += b
    while b"\r" in buf:
        line, _, buf = buf.partition(b"\r")
        line = line.strip(b"\n").strip()
        if line:
            handle(line.decode(errors="replace"))
