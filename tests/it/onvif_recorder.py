#!/usr/bin/env python3
"""A scripted ONVIF recorder for the integration tests: the Recording Search service's
GetRecordingSummary over SOAP 1.2 / HTTP, behind WS-Security UsernameToken
(PasswordDigest) authentication.

A fake, allowed because no recorder exists on the test machines. What it answers comes
from the ONVIF specifications, and every message is checked against the normative ONVIF
schema shipped in PyPI's `onvif-zeep` (wsdl/search.wsdl with the onvif.xsd it imports),
with lxml:

- the request's Body element (tse:GetRecordingSummary) is validated; an invalid request is
  answered with env:Sender and logged `"valid": false`;
- the reply's Body element (tse:GetRecordingSummaryResponse, a tt:RecordingSummary with
  DataFrom, DataUntil, NumberRecordings — ONVIF Recording Search Service Specification,
  "GetRecordingSummary") is validated before it is sent; the peer refuses to send one
  that is not valid (HTTP 500, logged);
- authentication follows ONVIF Core Specification "User-based access control"
  (WS-Security UsernameToken Profile 1.0: PasswordDigest = Base64(SHA-1(nonce + created +
  password))); a wrong user or digest gets the generic fault of the Core Specification's
  fault table: env:Sender / ter:NotAuthorized "Sender not Authorized", HTTP 400 (SOAP 1.2
  HTTP binding: Sender faults are 400).

No SOAP 1.2 envelope schema ships offline (onvif-zeep's `envelope` is SOAP 1.1), so the
envelope and the WS-Security header are checked structurally, element by element.

Recorders are served at /<name>/onvif/search_service, each keeping `days` of recordings
(DataFrom = now - days, DataUntil = now). The log (--log) gets one JSON object per request.
"""
import argparse
import base64
import datetime
import hashlib
import http.server
import json
import os
import sys
import threading

import onvif  # noqa: F401  (locates the wsdl folder it ships)
from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
TSE = "http://www.onvif.org/ver10/search/wsdl"
TT = "http://www.onvif.org/ver10/schema"


def load_schema():
    wsdl_dir = os.path.join(os.path.dirname(os.path.dirname(onvif.__file__)), "wsdl")
    path = os.path.join(wsdl_dir, "search.wsdl")
    wsdl = etree.parse(path)
    schema_el = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}schema")
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema_el), base_url=path))


SCHEMA = load_schema()
LOCK = threading.Lock()


def xsd_errors(el):
    copy = etree.fromstring(etree.tostring(el))
    if SCHEMA.validate(copy):
        return []
    return [str(e) for e in SCHEMA.error_log]


def envelope(body_xml):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:ter="http://www.onvif.org/ver10/error" '
        f'xmlns:tse="{TSE}" xmlns:tt="{TT}"><env:Body>{body_xml}</env:Body></env:Envelope>'
    ).encode()


def fault(code, subcode, reason):
    return envelope(
        f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode>"
        f"<env:Value>{subcode}</env:Value></env:Subcode></env:Code><env:Reason>"
        f'<env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault>'
    )


def xs_datetime(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, entry):
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        entry["status"] = status
        with LOCK, open(self.server.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        args = self.server.args
        entry = {"path": self.path, "content_type": self.headers.get("Content-Type", "")}
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[1:] != ["onvif", "search_service"] or parts[0] not in args.days:
            return self.reply(404, b"", entry)
        days = args.days[parts[0]]
        entry["recorder"] = parts[0]
        problems = []
        if not entry["content_type"].startswith("application/soap+xml"):
            problems.append("Content-Type is not application/soap+xml (SOAP 1.2)")
        try:
            doc = etree.fromstring(raw)
        except etree.XMLSyntaxError as e:
            entry["valid"] = False
            entry["problems"] = [f"not XML: {e}"]
            return self.reply(400, fault("env:Sender", "ter:WellFormed", "Well-formed Error"), entry)
        if doc.tag != f"{{{SOAP12}}}Envelope":
            problems.append(f"root is {doc.tag}, not a SOAP 1.2 Envelope")
        body = doc.find(f"{{{SOAP12}}}Body")
        op = body[0] if body is not None and len(body) else None
        if op is None or op.tag != f"{{{TSE}}}GetRecordingSummary":
            problems.append("Body holds no tse:GetRecordingSummary")
        else:
            problems += xsd_errors(op)
        token = doc.find(f"{{{SOAP12}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        auth_ok = False
        if token is None:
            problems.append("no wsse:Security/wsse:UsernameToken header")
        else:
            user = token.findtext(f"{{{WSSE}}}Username")
            pw = token.find(f"{{{WSSE}}}Password")
            nonce = token.findtext(f"{{{WSSE}}}Nonce")
            created = token.findtext(f"{{{WSU}}}Created")
            if pw is None or pw.get("Type") != DIGEST:
                problems.append("wsse:Password is not of Type PasswordDigest")
            if None in (user, nonce, created):
                problems.append("UsernameToken lacks Username, Nonce or wsu:Created")
            else:
                try:
                    nonce_raw = base64.b64decode(nonce, validate=True)
                    when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
                    skew = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
                    if skew > 300:
                        problems.append(f"wsu:Created {created} is {skew:.0f} s off")
                except Exception as e:  # noqa: BLE001
                    problems.append(f"bad Nonce or Created: {e}")
                    nonce_raw = b""
                want = base64.b64encode(
                    hashlib.sha1(nonce_raw + created.encode() + args.password.encode()).digest()
                ).decode()
                auth_ok = user == args.user and pw is not None and (pw.text or "").strip() == want
                entry["user"] = user
        entry["valid"] = not problems
        entry["problems"] = problems
        entry["auth_ok"] = auth_ok
        if problems:
            return self.reply(400, fault("env:Sender", "ter:InvalidArgs", "; ".join(problems)), entry)
        if not auth_ok:
            return self.reply(400, fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized"), entry)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        body_xml = (
            "<tse:GetRecordingSummaryResponse><tse:Summary>"
            f"<tt:DataFrom>{xs_datetime(now - datetime.timedelta(days=days))}</tt:DataFrom>"
            f"<tt:DataUntil>{xs_datetime(now)}</tt:DataUntil>"
            f"<tt:NumberRecordings>{args.recordings}</tt:NumberRecordings>"
            "</tse:Summary></tse:GetRecordingSummaryResponse>"
        )
        out = envelope(body_xml)
        errors = xsd_errors(etree.fromstring(out).find(f"{{{SOAP12}}}Body")[0])
        entry["reply_valid"] = not errors
        if errors:
            entry["problems"] = errors
            return self.reply(500, fault("env:Receiver", "ter:Action", "; ".join(errors)), entry)
        return self.reply(200, out, entry)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--recordings", type=int, default=8)
    p.add_argument("--recorder", action="append", default=[], help="name=days")
    args = p.parse_args()
    args.days = {k: float(v) for k, v in (r.split("=", 1) for r in args.recorder)}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.args = args
    print(f"onvif recorder ready on port {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
