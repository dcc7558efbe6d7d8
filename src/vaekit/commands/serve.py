"""Serve a run or a detector over HTTP: an API with micro-batching, and the explorer page at /.

The API's docs are at /docs."""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p, help="a run folder (vaekit train) or a detector folder (vaekit detect fit)")
    add_data(p, default_help="; what the explorer page maps (default: all of the run's own data)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; any other needs --api-key "
                        "or --insecure)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default: 8000)")
    p.add_argument("--api-key", metavar="KEY", help="requests must send this key in the X-API-Key header")
    p.add_argument("--insecure", action="store_true", help="allow another --host without an API key")
    p.add_argument("--max-batch", type=positive_int, default=256,
                   help="rows gathered from concurrent requests into one forward pass (default: 256)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to share its pass, 0 to 1000 (default: 5)")
    p.add_argument("--queue", type=positive_int, default=256,
                   help="requests that may wait; one more is answered 503 (default: 256)")
    p.add_argument("--request-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time a client has to send each request whole; a slower one is cut off (default: 30)")
    p.add_argument("--device", default="auto", help="where the model runs (default: auto)")


def run(args: argparse.Namespace) -> int:
    import signal

    from ..serve import serve

    # uvicorn shuts down gracefully on SIGTERM (docker stop, systemd), then raises it again:
    # its default meaning then ends the process quietly; no run is left to continue.
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread (main() called from a thread): signals stay as they are
        pass

    serve(args.run, host=args.host, port=args.port, api_key=args.api_key, insecure=args.insecure,
          request_timeout=args.request_timeout, device=args.device, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, queue_size=args.queue,
          data=args.data)
    return 0
