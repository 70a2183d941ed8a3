#!/usr/bin/python3
"""Webhook receiver of the demo: prints one line per alert of every notification Alertmanager
sends (webhook payload version 4), and appends the raw JSON to a file.

usage: demo_receiver.py PORT RAW_LOG
"""
import http.server
import json
import sys
import time

PORT, RAW_LOG = int(sys.argv[1]), sys.argv[2]
COLORS = {"critical": "\033[1;31m", "warning": "\033[1;33m", "resolved": "\033[1;32m"}
RESET = "\033[0m" if sys.stdout.isatty() else ""
if not RESET:
    COLORS = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        with open(RAW_LOG, "ab") as f:
            f.write(body + b"\n")
        try:
            message = json.loads(body)
        except ValueError:
            print(f"receiver: not JSON: {body[:200]!r}", flush=True)
            return
        now = time.strftime("%H:%M:%S")
        for alert in message.get("alerts", []):
            labels, ann = alert.get("labels", {}), alert.get("annotations", {})
            state = "RESOLVED" if alert.get("status") == "resolved" else "FIRING  "
            severity = labels.get("severity", "")
            color = COLORS.get("resolved" if state == "RESOLVED" else severity, "")
            print(f"{now} {color}{state} {severity:8} {labels.get('alertname', '?')}{RESET}"
                  f" [{labels.get('target', labels.get('instance', ''))}] {ann.get('summary', '')}", flush=True)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
