"""``vaekit serve``: a trained run or detector as an HTTP service (FastAPI under uvicorn).

Endpoints (OpenAPI docs at ``/docs``): ``/health``, ``/info``; for a run ``/encode``,
``/decode``, ``/reconstruct``, ``/sample``, ``/interpolate`` and ``/space`` (what the
explorer's sliders and map need, :mod:`vaekit.explorer`); for a detector ``/score``. ``/``
is the explorer page, served with its script from the package (no CDN: it works offline).
Inputs come as JSON arrays in the data's own layout (tables (N, D) in their units; images
(N, H, W) or (N, H, W, C) with values in [0, 1]), as uploaded PNG images, or as an uploaded
CSV table; outputs are JSON, or a PNG grid with ``?format=png`` where they are images.

Concurrent requests for the same operation are gathered into one forward pass
(:class:`Batcher`): a request waits at most ``max_wait_ms`` for others; a full queue
answers 503 rather than growing without bound. Every bad request is a 4xx JSON error
``{"error": "..."}`` that says what is wrong; the server stays up.

Needs ``pip install 'vaekit[serve]'`` (FastAPI, uvicorn, python-multipart).
"""
# No postponed annotations here: FastAPI reads the request models of the endpoints, which are
# defined inside create_app, from their annotations at definition time.
import asyncio
import errno
import io
import ipaddress
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import VaekitError, option

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 16 << 20   # a request body larger than this is refused (413)
MAX_WAIT_MS = 1000.0        # the longest --max-wait-ms: a request never waits longer than this for company
REQUEST_TIMEOUT = 30.0      # seconds a client has to send a whole request (headers and body) once it starts
MAX_CONNECTIONS = 1000      # open connections and tasks; past this, new requests are answered 503
SHUTDOWN_GRACE = 5.0        # seconds requests under way get to finish once the server is told to stop
TOO_DEEP = "the JSON body is nested too deeply; send rows of numbers, such as {\"inputs\": [[0.1, 0.2]]}"
TOO_LARGE = "the request holds a number too large for a float (about 1.8e308); send smaller ones"
MAX_ROWS = 4096             # inputs (or samples) in one request
MAX_STEPS = 256             # points on one interpolation path


class ServeError(Exception):
    """A bad request: its HTTP status and the one line that says what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_options(max_batch: int = 256, max_wait_ms: float = 5.0, queue_size: int = 256) -> None:
    """One line for a batching option out of its range (an infinite wait answered nothing, ever)."""
    for name, value in (("max_batch", max_batch), ("queue_size", queue_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise VaekitError(f"{option(name)} must be a whole number of at least 1, got {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) \
            or not 0 <= max_wait_ms <= MAX_WAIT_MS:  # NaN fails every comparison
        raise VaekitError(f"{option('max_wait_ms')} must be a number of milliseconds from 0 to {MAX_WAIT_MS:g}, "
                          f"got {max_wait_ms!r}")


def listening_socket(host: str, port: int):
    """A socket bound to ``host``:``port``, or one line saying why it cannot be (a busy port, an
    address this machine does not have): checked before the server says where it listens."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise VaekitError(f"{option('port')} must be 1 to 65535, got {port!r}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise VaekitError(f"{option('host', host)} is not an address of this machine ({e.strerror or e}); "
                          "use 127.0.0.1, or 0.0.0.0 for every address") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        hint = {errno.EADDRINUSE: f"choose another {option('port')}, or stop what serves there",
                errno.EADDRNOTAVAIL: f"give {option('host')} an address this machine has (127.0.0.1, or 0.0.0.0 "
                                     "for all of them)",
                errno.EACCES: f"ports below 1024 need administrator rights; choose another {option('port')}"}
        raise VaekitError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                          f"{hint.get(e.errno, 'choose another ' + option('port'))}") from None
    sock.set_inheritable(True)
    return sock


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Serving beyond this machine needs a key, or the explicit word that none is wanted."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not api_key and not insecure:
        raise VaekitError(f"{option('host', host)} lets other machines call the model; give "
                          f"{option('api_key')} (requests then need it) or {option('insecure')} to serve without one")


# -- micro-batching --------------------------------------------------------------------------
@dataclass
class _Job:
    rows: np.ndarray
    labels: np.ndarray | None
    done: asyncio.Future


@dataclass
class Batcher:
    """Gathers the rows of concurrent requests into one call of ``fn(rows, labels)``.

    A request's rows wait at most ``max_wait`` seconds for company and a batch holds at
    most ``max_batch`` rows (a single larger request runs alone); at most ``queue_size``
    requests wait, and one more is refused with 503.
    """

    fn: callable
    max_batch: int = 256
    max_wait: float = 0.005
    queue_size: int = 256
    requests: int = 0
    batches: int = 0
    queue: asyncio.Queue | None = field(default=None, repr=False)
    worker: asyncio.Task | None = field(default=None, repr=False)
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    async def __call__(self, rows: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # the queue and its worker belong to one event loop (a server has one)
            self.loop, self.queue = loop, asyncio.Queue(self.queue_size)
            self.worker = loop.create_task(self._work())
        job = _Job(rows, labels, loop.create_future())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise ServeError(503, f"the server is busy ({self.queue_size} requests waiting); retry shortly") from None
        self.requests += 1
        return await job.done

    async def _work(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0].rows)
            deadline = time.perf_counter() + self.max_wait
            while size < self.max_batch:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                size += len(job.rows)
            await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        rows = np.concatenate([j.rows for j in jobs])
        labels = None if jobs[0].labels is None else np.concatenate([j.labels for j in jobs])
        self.batches += 1
        try:  # the model runs in a thread, so the event loop keeps taking requests meanwhile
            out = await asyncio.to_thread(self.fn, rows, labels)
        except Exception as e:  # noqa: BLE001  (every waiting request learns what happened)
            for j in jobs:
                if not j.done.done():
                    j.done.set_exception(e)
            return
        start = 0
        for j in jobs:
            if not j.done.done():
                j.done.set_result(out[start:start + len(j.rows)])
            start += len(j.rows)


# -- the service -----------------------------------------------------------------------------
class Service:
    """What the endpoints call: a loaded run or detector, with input parsing and batching."""

    def __init__(self, folder, device: str = "auto", max_batch: int = 256, max_wait_ms: float = 5.0,
                 queue_size: int = 256, data=None):
        from .runfolder import RunFolder

        check_options(max_batch, max_wait_ms, queue_size)
        self.folder = RunFolder.open(folder)
        self.data = data  # what the explorer maps (None: all of the run's own data)
        self._space = None
        self.kind = self.folder.kind
        batching = dict(max_batch=max_batch, max_wait=max_wait_ms / 1000, queue_size=queue_size)
        if self.kind == "detector":
            from .anomaly import AnomalyDetector

            if data is not None:
                raise VaekitError(f"{option('data')} chooses the data a run's explorer maps; a detector's page "
                                  "scores what is uploaded to it, so leave it out")
            self.detector = AnomalyDetector.load(folder)
            self.run = None
            self.shape = tuple(self.detector.sample_shape_)
            self.layout = "tabular" if self.detector.kind_ == "tabular" else self._image_layout(self.shape)
            self.columns = list(getattr(self.detector, "feature_names_in_", [])) or None
            self.schema = self.detector.schema_
            # a standardised table goes to the model in float64 (any finite value; 1e12 keeps its units digits)
            self.float64_rows = self.detector.kind_ == "tabular" and not self.detector.intensities_
            self.batchers = {"score": Batcher(lambda x, y: self.detector.decision_function(self._dataset(x, y)),
                                              **batching)}
        else:
            from .run import load

            self.run = load(folder, device)
            cfg = self.run.config
            self.shape = tuple(cfg.model.input_shape)
            self.layout, self.columns = cfg.data.layout, cfg.data.columns
            self.schema = cfg.data.table_schema()
            if self.schema is not None:  # rows come and go in the table's own columns
                self.columns = self.schema.names
            self.float64_rows = cfg.data.mean is not None
            if data is not None:  # data chosen for the explorer must fit the model: said at start, not on the page
                self.space()
            self.batchers = {"encode": Batcher(self._encode, **batching),
                             "reconstruct": Batcher(self._reconstruct, **batching)}

    @staticmethod
    def _image_layout(shape) -> str:
        return "gray" if shape[0] == 1 else "channel-last"

    # model calls on rows already checked (run in the batcher's thread)
    def _dataset(self, x, y):
        from dataclasses import replace

        from .data import from_arrays

        data = from_arrays(x, y, name="request")
        return data if self.schema is None else replace(data, schema=self.schema)  # rows already encoded

    def _encode(self, x, y):
        return self.run.encode(self._dataset(x, y))

    def _reconstruct(self, x, y):
        return self.run.reconstruct(self._dataset(x, y))

    def space(self) -> dict:
        """The explorer's sliders, map and examples (computed once)."""
        if self._space is None:
            from .explorer import latent_space

            self._space = latent_space(self.run, self.data)
        return self._space

    # what /info shows
    def info(self) -> dict:
        out = {"kind": self.kind, "folder": str(self.folder.path), "input_shape": list(self.shape),
               "layout": self.layout, "columns": self.columns, "max_rows": MAX_ROWS,
               "batching": {name: {"requests": b.requests, "batches": b.batches} for name, b in self.batchers.items()}}
        if self.run is not None:
            model = self.run.model
            out.update(model=self.run.config.model.model, latent_dim=model.latent_dim, generative=model.generative,
                       classes=model.n_classes or None, image=self.layout != "tabular",
                       priors=list(model.sampling_priors), prior=model.default_prior if self.run.can_sample else None)
        else:
            d = self.detector
            out.update(model=d.model, threshold=d.threshold_, anomaly_score=d.anomaly_score_)
        return out

    # -- inputs -----------------------------------------------------------------------------
    def rows(self, values) -> np.ndarray:
        """JSON rows as an array in the data's layout, checked: numbers, finite, the model's shape.
        A table with binary or categorical columns takes rows of its own cells (text, numbers,
        true/false, null for a missing cell), as lists in column order or objects by name."""
        if self.schema is not None:
            return self._table_rows(values)
        try:
            x = np.asarray(values, dtype=np.float64)
        except OverflowError:  # a whole number of hundreds of digits
            raise ServeError(422, TOO_LARGE) from None
        except (TypeError, ValueError, RecursionError):
            raise ServeError(422, "inputs must be a list of rows of numbers (nested lists of the same "
                                  "length)") from None
        return self._checked(x)

    def _checked(self, x: np.ndarray) -> np.ndarray:
        expected = self.expected_row_shape()
        if x.ndim == len(expected):  # one row given without the outer list
            x = x[None]
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise ServeError(422, f"each input must have shape {list(expected)} (the model's "
                                  f"{self.describe()}), got inputs of shape {list(x.shape[1:])}")
        if len(x) == 0:
            raise ServeError(422, "no inputs given; send at least one row")
        if len(x) > MAX_ROWS:
            raise ServeError(413, f"{len(x)} inputs in one request; send at most {MAX_ROWS}")
        if not np.isfinite(x).all():
            raise ServeError(422, "inputs hold NaN or infinite values; send finite numbers")
        if self.float64_rows:
            return x
        if np.abs(x).max() > np.finfo(np.float32).max:
            raise ServeError(422, "inputs hold values beyond the model's numbers (float32, about 3.4e38); send "
                                  "smaller ones")
        if self.layout != "tabular" and (x.min() < 0 or x.max() > 1):
            raise ServeError(422, "image values must lie in [0, 1] (8-bit pixels divided by 255)")
        return x.astype(np.float32)

    def _table_rows(self, values) -> np.ndarray:
        """Rows of a table with text columns, encoded with the model's schema (float64; NaN where a
        cell is missing, which the model leaves out)."""
        names = self.schema.names
        if not isinstance(values, list) or not values:
            raise ServeError(422, "inputs must be a non-empty list of rows (lists of cells in column order, or "
                                  f"objects by column name); the columns are {', '.join(names)}")
        if len(values) > MAX_ROWS:
            raise ServeError(413, f"{len(values)} inputs in one request; send at most {MAX_ROWS}")
        cells = []
        for i, row in enumerate(values):
            if isinstance(row, dict):
                unknown = [k for k in row if k not in names]
                if unknown:
                    raise ServeError(422, f"row {i} names column(s) {', '.join(map(repr, unknown))}, which the model "
                                          f"does not have; its columns are {', '.join(names)}")
                row = [row.get(name) for name in names]  # a column left out is a missing cell
            if not isinstance(row, list) or len(row) != len(names) or \
                    any(isinstance(v, (list, dict)) for v in row):
                raise ServeError(422, f"row {i} must hold {len(names)} cells ({', '.join(names)}): text, numbers, "
                                      "true/false or null")
            cells.append(row)
        columns = [np.array([row[j] for row in cells], dtype=object) for j in range(len(names))]
        return self.schema.encode(names, columns, "inputs")

    def expected_row_shape(self) -> tuple[int, ...]:
        if self.layout == "tabular":
            return (self.shape[0],)
        c, h, w = self.shape
        return (h, w) if self.layout == "gray" else (h, w, c)

    def describe(self) -> str:
        if self.schema is not None:
            return f"table of {len(self.schema.names)} columns ({', '.join(self.schema.names)})"
        if self.layout == "tabular":
            return f"table of {self.shape[0]} features" + (f" ({', '.join(self.columns)})" if self.columns else "")
        c, h, w = self.shape
        return f"{h}x{w} {'grayscale' if c == 1 else 'RGB'} images"

    def images(self, blobs: list[tuple[str, bytes]]) -> np.ndarray:
        """Uploaded PNG (or JPEG) files as rows, checked against the model's image size."""
        from PIL import Image, UnidentifiedImageError

        if self.layout == "tabular":
            raise ServeError(415, f"this model takes a {self.describe()}, not images; send JSON rows or a CSV file")
        c, h, w = self.shape
        rows = []
        for name, blob in blobs:
            try:
                im = Image.open(io.BytesIO(blob))  # reads the header only: the size is known before decoding
            except Image.DecompressionBombError:
                raise ServeError(413, f"{name}: the image is far larger than the model's {w}x{h}") from None
            except (UnidentifiedImageError, OSError, ValueError):
                raise ServeError(415, f"{name}: not a PNG or JPEG image") from None
            if im.size != (w, h):
                raise ServeError(422, f"{name}: the image is {im.size[0]}x{im.size[1]}, the model takes {w}x{h}")
            try:
                im.load()
            except (OSError, ValueError):
                raise ServeError(415, f"{name}: not a readable PNG or JPEG image (damaged?)") from None
            a = np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.float64) / 255.0
            rows.append(a)
        return self._checked(np.stack(rows))

    def table(self, name: str, blob: bytes) -> tuple[np.ndarray, np.ndarray | None]:
        """An uploaded CSV file as rows (and its label column, if any)."""
        import tempfile

        from .data.files import load_csv

        if self.layout != "tabular":
            raise ServeError(415, f"this model takes {self.describe()}, not a table; send PNG images or JSON rows")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.csv"
            path.write_bytes(blob)
            try:
                ds = load_csv(path, self.schema)
            except VaekitError as e:
                raise ServeError(422, f"{name}: {str(e).removeprefix(str(path) + ': ')}") from None
        unnamed = [f"x{j}" for j in range(len(ds.columns or []))]  # what a CSV without a header gets
        y = None if ds.y is None else ds.y.numpy()
        if self.schema is not None:  # read with the model's schema (its columns checked): NaN are missing cells
            return ds.x.numpy().astype(np.float64), y
        if self.columns and ds.columns and list(ds.columns) != list(self.columns) and list(ds.columns) != unnamed:
            raise ServeError(422, f"{name}: columns {list(ds.columns)} differ from the model's {list(self.columns)}")
        return self._checked(ds.x.numpy().astype(np.float64)), y

    def needs_run(self, what: str) -> None:
        if self.run is None:
            raise ServeError(404, f"/{what} is for a trained run; this is an anomaly detector, which has /score")

    def needs_detector(self) -> None:
        if self.run is not None:
            raise ServeError(404, "/score is for an anomaly detector (vaekit detect fit); this run has /encode, "
                                  "/decode, /reconstruct, /sample and /interpolate")


def looks_like_image(blob: bytes) -> bool:
    """Whether a file starts as a PNG or a JPEG does."""
    return blob.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))


def plain(values) -> list:
    """Numbers for JSON: six decimals, as Python floats (float32's noise digits left out); huge
    ones as they are (rounding them would overflow)."""
    values = np.asarray(values, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(values) < 1e300, np.round(values, 6), values).tolist()


def table_cells(rows: np.ndarray) -> list:
    """A table's rows of text and numbers (an array of objects) for JSON: numbers as :func:`plain`
    gives them, true/false as such, a missing cell as null."""
    def cell(v):
        if v is None or (isinstance(v, float) and v != v):
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, float, np.integer, np.floating)):
            return plain([float(v)])[0]
        return str(v)

    return [[cell(v) for v in row] for row in rows]


def png(images: np.ndarray, layout: str, ncol: int | None = None) -> bytes:
    """Outputs in the data's image layout as one PNG grid."""
    from .data.dataset import from_layout
    from .images import grid_png

    return grid_png(from_layout(np.asarray(images, np.float32), layout), ncol)


# The explorer page's files, in the package (vaekit/static), with their media types.
ASSETS = {"explorer.js": "text/javascript", "explorer.css": "text/css"}
# The page loads nothing from elsewhere: scripts, styles and pictures come from this server only.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")  # and no other site may frame it
OPEN_PATHS = ("/", "/health", "/favicon.ico")  # served without an API key (no model output in them)


def create_app(folder, api_key: str | None = None, device: str = "auto", max_batch: int = 256,
               max_wait_ms: float = 5.0, queue_size: int = 256, data=None):
    """The FastAPI app serving ``folder`` (a run or a detector); ``data`` is what the explorer
    page maps (default: all of the run's own data)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from pydantic import BaseModel, Field
        from starlette.exceptions import HTTPException
        from starlette.requests import ClientDisconnect
    except ImportError:
        raise VaekitError("serving needs FastAPI and uvicorn; pip install 'vaekit[serve]'") from None

    service = Service(folder, device, max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size,
                      data=data)
    app = FastAPI(title=f"vaekit: {service.folder.path.name}",
                  description=f"A vaekit {service.kind} served over HTTP. Inputs: {service.describe()}.")
    app.state.service = service

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ServeError)
    async def _serve_error(request, e: ServeError):
        return error(e.status, str(e))

    @app.exception_handler(VaekitError)
    async def _vaekit_error(request, e: VaekitError):
        return error(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where or 'request'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def _http(request, e: HTTPException):
        return error(e.status_code, str(e.detail))

    # Bodies FastAPI parses itself (/decode, /interpolate): JSON nested past Python's recursion
    # limit, or a whole number too large for a float, are the request's fault, not ours.
    @app.exception_handler(RecursionError)
    async def _too_deep(request, e: RecursionError):
        return error(422, TOO_DEEP)

    @app.exception_handler(OverflowError)
    async def _too_large(request, e: OverflowError):
        return error(422, TOO_LARGE)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request, e: ClientDisconnect):  # cut off mid-body (it stalled, or left): nobody to answer
        return error(400, "the client disconnected before its request was complete")

    @app.exception_handler(Exception)
    async def _unexpected(request, e: Exception):  # a bug of ours: still one JSON line, and the server lives
        return error(500, f"internal error ({type(e).__name__}); please report it")

    class BodyTooLarge(HTTPException):
        """Raised while a body is read, past the cap: FastAPI lets an HTTPException through
        where it turns other errors in reading a body into a 400."""

        def __init__(self):
            super().__init__(413, f"the request body is over {MAX_BODY_BYTES >> 20} MB; send fewer inputs at a time")

    class BodyCap:
        """The body cap for any framing: bytes are counted as they arrive (a chunked body has no
        Content-Length), and the request is refused once past the cap, the rest left unread."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            seen = 0

            async def counted():
                nonlocal seen
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                return message

            await self.inner(scope, counted, send)

    app.add_middleware(BodyCap)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if api_key and path not in OPEN_PATHS and not path.startswith("/static/") \
                and request.headers.get("x-api-key") != api_key:
            if request.headers.get("x-api-key") is None:
                return error(401, "this server needs its API key; send it in the X-API-Key header")
            return error(401, "wrong API key; send the key the server was started with (--api-key)")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return error(413, f"the request body is over {MAX_BODY_BYTES >> 20} MB; send fewer inputs at a time")
        return await call_next(request)

    class Rows(BaseModel):
        inputs: list = Field(description="rows in the data's layout: (N, D) table rows, or (N, H, W[, C]) "
                                         "images with values in [0, 1]")
        labels: list[int] | None = Field(None, description="one class per row, for a conditional model")

    class Codes(BaseModel):
        codes: list[list[float]] = Field(description="latent codes, (N, latent_dim)")
        label: int | None = Field(None, description="class of a conditional model (default: each in turn)")

    class Between(BaseModel):
        inputs: list = Field(description="the two inputs whose codes the path joins")
        steps: int = Field(10, ge=2, le=MAX_STEPS)
        method: str = Field("lerp", description="lerp or slerp")
        labels: list[int] | None = None

    async def read_inputs(request: Request) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows from a JSON body, uploaded images, or an uploaded CSV table."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            files = [(f.filename or "upload", await f.read()) for f in form.getlist("file") if hasattr(f, "read")]
            if not files:
                raise ServeError(422, "no file in the upload; send images or a CSV under the field name 'file'")
            if service.layout == "tabular" and not looks_like_image(files[0][1]):
                if len(files) > 1:
                    raise ServeError(422, f"{len(files)} files sent; send the table as one CSV file")
                return service.table(*files[0])  # whatever the file is called
            return service.images(files), None
        try:
            body = Rows.model_validate(await request.json())
        except RecursionError:
            raise ServeError(422, TOO_DEEP) from None
        except (ValueError, UnicodeDecodeError) as e:
            errors = getattr(e, "errors", None)  # pydantic's: the first problem, in one line, not its dump
            why = errors()[0].get("msg", "") if callable(errors) and errors() else " ".join(str(e).split())
            raise ServeError(422, f"the body must be JSON {{\"inputs\": [...]}} (a list of rows) or an upload of "
                                  f"files ({why})"[:300]) from None
        x = service.rows(body.inputs)
        y = None if body.labels is None else np.asarray(body.labels)
        if y is not None and len(y) != len(x):
            raise ServeError(422, f"{len(y)} labels for {len(x)} inputs; give one label per input")
        return x, y

    def class_labels(x, y):
        model = service.run.model
        if not model.n_classes:
            return None
        if y is None:
            raise ServeError(422, "this conditional model needs a label for each input; send \"labels\"")
        if y.min() < 0 or y.max() >= model.n_classes:
            raise ServeError(422, f"labels must be classes 0 to {model.n_classes - 1}")
        return y

    def finite(outputs: np.ndarray) -> np.ndarray:
        if outputs.dtype == object:  # a table's own columns: text, and numbers checked one by one
            numbers = np.array([v for v in outputs.flat if isinstance(v, float)], np.float64)
            if not np.isfinite(numbers).all():
                raise ServeError(422, "the outputs overflow (values too large for the model's numbers)")
            return outputs
        if not np.isfinite(outputs).all():
            raise ServeError(422, "the outputs overflow (values too large for the model's numbers); send smaller "
                                  "inputs, codes or temperature")
        return outputs

    def respond(outputs: np.ndarray, key: str, fmt: str, ncol: int | None = None):
        finite(outputs)
        if fmt == "png":
            if service.layout == "tabular":
                raise ServeError(422, "format=png is for image models; this one outputs table rows")
            return Response(png(outputs, service.layout, ncol), media_type="image/png")
        if fmt != "json":
            raise ServeError(422, f"format {fmt!r} is not json or png")
        return {key: table_cells(outputs) if outputs.dtype == object else plain(outputs)}

    def as_table(outputs: np.ndarray) -> np.ndarray:
        """Model columns of a table with text columns as its own columns (numbers as they are)."""
        return outputs if service.schema is None else service.run.as_table(outputs)

    static = resources.files("vaekit") / "static"

    @app.get("/", include_in_schema=False)
    async def explorer():
        return HTMLResponse((static / "explorer.html").read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():  # browsers ask for one; there is none to send
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str):
        if name not in ASSETS:
            raise ServeError(404, f"no file {name!r} here; the explorer page is at /")
        return Response((static / name).read_bytes(), media_type=ASSETS[name])

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return service.info()

    @app.post("/encode", summary="latent codes (posterior means) of the inputs")
    async def encode(request: Request):
        service.needs_run("encode")
        x, y = await read_inputs(request)
        return {"codes": plain(finite(await service.batchers["encode"](x, class_labels(x, y))))}

    @app.post("/reconstruct", summary="the model's reconstructions of the inputs")
    async def reconstruct(request: Request, format: str = "json"):
        service.needs_run("reconstruct")
        x, y = await read_inputs(request)
        return respond(await service.batchers["reconstruct"](x, class_labels(x, y)), "outputs", format)

    @app.post("/decode", summary="outputs decoded from latent codes")
    async def decode(body: Codes, format: str = "json"):
        service.needs_run("decode")
        z = np.asarray(body.codes, dtype=np.float64)
        latent = service.run.model.latent_dim
        if z.ndim != 2 or z.shape[1] != latent or not len(z):
            raise ServeError(422, f"codes must be rows of {latent} numbers, got shape {list(z.shape)}")
        if len(z) > MAX_ROWS or not np.isfinite(z).all():
            raise ServeError(422 if len(z) <= MAX_ROWS else 413, f"send 1 to {MAX_ROWS} rows of finite numbers")
        out = await asyncio.to_thread(service.run.decode, z, body.label)  # Run checks the label (422)
        return respond(as_table(out), "outputs", format)

    @app.get("/sample", summary="new samples from the prior")
    async def sample(n: int = 16, seed: int = 0, temperature: float = 1.0, label: int | None = None,
                     prior: str | None = None, format: str = "json"):
        service.needs_run("sample")
        if not 1 <= n <= MAX_ROWS:
            raise ServeError(422, f"n must be 1 to {MAX_ROWS}, got {n}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ServeError(422, f"temperature must be a positive number, got {temperature}")
        # Run checks the label and the prior, and that the model has it (a VaekitError: 422)
        out = await asyncio.to_thread(service.run.sample, n, seed, temperature, label, prior)
        # with no label a conditional model draws each class in turn: a row per round of classes
        return respond(out, "samples", format, ncol=(service.run.model.n_classes or None) if label is None else None)

    @app.post("/interpolate", summary="decoded points on the path between two inputs' codes")
    async def interpolate(body: Between, format: str = "json"):
        service.needs_run("interpolate")
        x = service.rows(body.inputs)
        if len(x) != 2:
            raise ServeError(422, f"interpolate joins exactly 2 inputs, got {len(x)}")
        if body.method not in ("lerp", "slerp"):
            raise ServeError(422, f"method must be lerp or slerp, got {body.method!r}")
        y = class_labels(x, None if body.labels is None else np.asarray(body.labels))
        data = service._dataset(x, y)
        out = await asyncio.to_thread(service.run.interpolate, data, 0, 1, body.steps, body.method)
        return respond(as_table(out), "outputs", format, ncol=body.steps)

    @app.get("/space", summary="sliders, 2-D map and example inputs of the latent space (for the explorer)")
    async def space():
        service.needs_run("space")
        return await asyncio.to_thread(service.space)

    @app.post("/score", summary="anomaly scores (higher = more anomalous) and 0/1 flags")
    async def score(request: Request):
        service.needs_detector()
        x, _ = await read_inputs(request)
        # A row so far out that its score overflows is as anomalous as can be: JSON has no
        # infinity, so it gets the largest number instead, which keeps the order.
        scores = np.nan_to_num(np.asarray(await service.batchers["score"](x, None), np.float64),
                               nan=np.finfo(np.float64).max)
        return {"scores": plain(scores), "labels": service.detector.flags(scores).tolist(),
                "threshold": service.detector.threshold_}

    return app


def _deadline_protocol(timeout: float):
    """uvicorn's HTTP/1.1 protocol with a deadline on receiving each request: a client that sends
    part of its headers or body and stalls is cut off after ``timeout`` seconds (uvicorn bounds
    only the idle time between requests)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Deadlined(H11Protocol):
        _deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._start()

        def _start(self):
            self._deadline = self.loop.call_later(timeout, self._too_slow)

        def _stop(self):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:  # the next request on this connection
                self._start()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
                self._stop()  # the whole request is in (or the connection is done with)

        def connection_lost(self, exc):
            self._stop()
            super().connection_lost(exc)

        def _too_slow(self):
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return Deadlined


def serve(folder, host: str = LOOPBACK, port: int = 8000, api_key: str | None = None, insecure: bool = False,
          request_timeout: float = REQUEST_TIMEOUT, **options) -> None:
    """Run the app under uvicorn until interrupted (SIGINT or SIGTERM; requests under way get
    :data:`SHUTDOWN_GRACE` seconds). A client gets ``request_timeout`` seconds to send each
    request whole. Every option is checked, and the port bound, before the address is printed."""
    check_bind(host, api_key, insecure)
    if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) \
            or not 0 < request_timeout <= 3600:
        raise VaekitError(f"{option('request_timeout')} must be a number of seconds above 0 and at most 3600, "
                          f"got {request_timeout!r}")
    app = create_app(folder, api_key=api_key, **options)  # its Service checks the batching options first
    import uvicorn  # present where create_app found FastAPI: the serve extra brings both

    sock = listening_socket(host, port)
    print(f"vaekit serve: {folder} at http://{host}:{port} (explorer at /, API docs at /docs); Ctrl-C stops",
          flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", http=_deadline_protocol(request_timeout),
                            limit_concurrency=MAX_CONNECTIONS, timeout_graceful_shutdown=SHUTDOWN_GRACE)
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
