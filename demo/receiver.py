#!/usr/bin/env python3
"""The demo's Alertmanager webhook receiver: prints one line per alert of each notification it
gets (receiver path, status, alert name, severity, summary) on standard output, flushed at once,
so the demo's terminal shows the loop's last step. Standard library only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port = int(sys.argv[1])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20))
        self.send_response(200)
        self.end_headers()
        try:
            notification = json.loads(body)
        except ValueError:
            print(f"receiver {self.path}: not JSON ({len(body)} bytes)", flush=True)
            return
        for alert in notification.get("alerts", []):
            labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
            print(f"receiver {self.path}: {alert.get('status', '?')} {labels.get('alertname', '?')} "
                  f"severity={labels.get('severity', '?')}: {annotations.get('summary', '')}", flush=True)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
