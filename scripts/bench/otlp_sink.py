#!/usr/bin/env python3
"""An OTLP/HTTP sink for `scripts/bench.sh traces`: answers every POST with an empty
ExportTraceServiceResponse (an empty protobuf message is a valid one) and counts the
batches and bytes it was sent, so the gateway's exporter does its whole work (encode,
send, await) and nothing is measured but the gateway.

Usage: otlp_sink.py PORT COUNTS_FILE   (the counts are rewritten after every batch)
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, counts_file = int(sys.argv[1]), sys.argv[2]
seen = {"batches": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        seen["batches"] += 1
        seen["bytes"] += n
        with open(counts_file, "w") as f:
            f.write(f"{seen['batches']} {seen['bytes']}\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
