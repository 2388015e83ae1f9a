"""``steerdiff serve``: an OpenAI-compatible structured-output server (FastAPI + uvicorn, extra ``serve``).

    steerdiff serve --port 8000 --api-key secret       # or STEERDIFF_API_KEY=secret

Modules: ``protocol`` (request bodies, limits, errors), ``compiler`` (compile off the event loop, LRU
cache), ``batcher`` (cross-request batching in one model thread), ``app`` (the endpoints).
``create_app(model, ...)`` builds the ASGI app for tests and embedding.
"""

from __future__ import annotations

import argparse
import os

API_KEY_ENV = "STEERDIFF_API_KEY"


def create_app(*args, **kwargs):
    """See :func:`steerdiff.serve.app.create_app` (imported lazily: fastapi is an optional extra)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)


def add_subcommand(sub) -> None:
    """Register ``steerdiff serve`` on the CLI's subparsers."""
    s = sub.add_parser("serve", help="OpenAI-compatible structured-output server (needs the 'serve' extra)")
    s.add_argument("--model", default=None, help="local model directory (default: the embedded steerdiff-tiny)")
    s.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    s.add_argument("--trust-remote-code", action="store_true", help="allow a checkpoint's own modeling code (auto_map)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port")
    s.add_argument("--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})")
    s.add_argument("--max-batch", type=int, default=16, help="rows per forward pass; 1 serves one request at a time")
    s.add_argument("--max-length", type=int, default=256, help="largest canvas (max_tokens) a request may ask for")
    s.add_argument("--max-queue", type=int, default=256, help="rows waiting before requests get 429")
    s.add_argument("--cache-size", type=int, default=128, help="compiled constraints kept (LRU)")
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    try:
        import uvicorn
    except ImportError:
        raise ConfigError("steerdiff serve needs the 'serve' extra: pip install 'steerdiff[serve]'") from None
    import torch

    from ..validate import load_model
    from .protocol import Limits

    if args.max_batch < 1 or args.max_length < 1 or args.max_queue < 1:
        raise ConfigError("--max-batch, --max-length and --max-queue must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device, trust_remote_code=args.trust_remote_code)
    name = os.path.basename(os.path.normpath(args.model)) if args.model else "steerdiff-tiny"
    limits = Limits(max_length=args.max_length, max_batch=args.max_batch, max_queue_rows=args.max_queue)
    app = create_app(model, model_name=name, api_key=args.api_key or os.environ.get(API_KEY_ENV) or None, limits=limits,
                     cache_entries=args.cache_size)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
