#!/usr/bin/env python3
"""HTTP(S) receiver for integration tests: answers 200 to every POST and appends one JSON line
per request (method, request-target as sent, headers, body) to LOG. Binds an ephemeral port on
127.0.0.1 and writes it to PORT_FILE once listening. With --cert/--key it speaks TLS.

usage: http_receiver.py LOG PORT_FILE [--cert PEM --key PEM]
"""
import argparse
import http.server
import json
import os
import ssl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("port_file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with open(args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"method": self.command, "target": self.path,
                                    "headers": dict(self.headers.items()),
                                    "body": body.decode("utf-8", "replace")}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, fmt, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
