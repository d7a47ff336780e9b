"""A Plex Media Server emulator on 127.0.0.1 that the real `plexapi` drives unchanged.

`PlexEmulator` owns an in-memory `Library` (model.py), serves Plex's XML API over real HTTP from a
background thread, can be switched into fault modes at run time (down with the port refusing
connections, 503, slow, database-loading, 401, fail the next N requests) and records every request
it answered so tests can count calls.

The XML copies the shape of real Plex responses as python-plexapi parses them. Two habits of
real Plex matter to the plugin and are reproduced on purpose:

* section listings (`/library/sections/N/all`) carry only a few tags of each kind (two genres,
  two collections, three of any other kind: `LISTING_TAG_LIMITS`, with their sources) and no
  `<Field locked>` elements; only `/library/metadata/{ratingKey}` is complete;
* attribute values keep newlines (`&#10;`), so summaries round-trip exactly.

Endpoints (token required on all, as header or `X-Plex-Token` query parameter):
  GET  /  /identity  /library  /library/sections  /library/sections/{id}
  GET  /library/sections/{id}/all (alias /search), /library/all   paging, filters, sort, includeMeta
  PUT  /library/sections/{id}/all?type=1&id=..&field.value=..      edits (also PUT /library/metadata/{rk})
  GET  /library/sections/{id}/refresh[?path=]                       scan (recorded in `scans`)
  GET  /library/sections/{id}/{genre,actor,collection,label,..}     filter choices
  GET  /library/sections/{id}/collections                           filter metadata for collections
  GET  /library/sections/{id}/all?type=18[&title=]                   the section's collections
  GET  /library/collections/{rk}/children                           a collection's items
  PUT  /:/rate?key={rk}&identifier=com.plexapp.plugins.library&rating=  user rating (-1 clears)
  GET  /library/metadata/{rk}[,{rk}..]                              full objects
  GET|POST /library/metadata/{rk}/posters|arts                      list / upload (body or ?url=)
  PUT  /library/metadata/{rk}/poster|art?url=                       select an upload
  GET|DELETE /library/metadata/{rk}/thumb|art[/{ts}]                image bytes / remove
  PUT  /library/metadata/{rk}/refresh  DELETE /library/metadata/{rk}
  GET  /hubs/search?query=
Anything else answers 404 and prints a note on stderr.
"""

from __future__ import annotations

import re
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from .model import TAG_ELEMENTS, TAG_TYPES, Collection, EditError, Item, Library, NotFoundError, Section

DEFAULT_VERSION = '1.41.3.9314-a0bfb8370'
FAULT_MODES = (None, 'up', 'down', '503', 'slow', 'db_loading', '401')
# How many tags of each kind a section listing (`/library/sections/N/all`, searches) shows per item;
# the full list is only in `/library/metadata/{ratingKey}`. Sources (python-plexapi issues, answered
# by its maintainers: "search results only show 3 items for each movie", "call reload()"):
# genres 2 (#249), collections 2 (#200), roles 3 (#409, #1194). Kinds without a source keep 3.
LISTING_TAG_LIMITS = {'genre': 2, 'collection': 2, 'actor': 3}
LISTING_TAG_LIMIT = 3
MEDIA_TAG_VERSION = '1700000000'

# ----------------------------------------------------------------------------- XML helpers
_ATTR_ESCAPES: Dict[int, Optional[str]] = {
    ord('&'): '&amp;',
    ord('<'): '&lt;',
    ord('>'): '&gt;',
    ord('"'): '&quot;',
    ord('\n'): '&#10;',
    ord('\r'): '&#13;',
    ord('\t'): '&#9;',
}
# Characters XML 1.0 cannot carry at all, not even as references: dropped, as Plex does.
for _c in list(range(0x20)) + [0xFFFE, 0xFFFF]:
    _ATTR_ESCAPES.setdefault(_c, None)


_NEEDS_ESCAPE = re.compile('[&<>"\x00-\x1f\ufffe\uffff]')


def xml_attr(value: Any) -> str:
    """Escape a value for a double-quoted XML attribute, keeping newlines as `&#10;`."""
    if type(value) is int:
        return str(value)
    text = str(value)
    return text.translate(_ATTR_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def attrs(pairs: Iterable[Tuple[str, Any]]) -> str:
    """Render `name="value"` pairs, skipping None values."""
    out = []
    for k, v in pairs:
        if v is not None:
            out.append(f'{k}="{xml_attr(v)}"')
    return ' '.join(out)


def element(tag: str, pairs: Iterable[Tuple[str, Any]], children: str = '') -> str:
    a = attrs(pairs)
    head = f'<{tag} {a}' if a else f'<{tag}'
    return f'{head}>{children}</{tag}>' if children else f'{head} />'


def container(pairs: Iterable[Tuple[str, Any]], children: str = '') -> bytes:
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + element('MediaContainer', pairs, children)
    return body.encode('utf-8', 'replace')


def _container_of(ext: str) -> str:
    return {
        'mkv': 'mkv',
        'mp4': 'mp4',
        'm4v': 'mp4',
        'avi': 'avi',
        'wmv': 'asf',
        'mov': 'mov',
        'webm': 'webm',
        'ts': 'mpegts',
        'flv': 'flv',
    }.get(ext, ext or 'mp4')


# ----------------------------------------------------------------------------- request log
class RequestRecord:
    """One request the emulator received (the token value is redacted)."""

    __slots__ = ('method', 'path', 'query', 'headers', 'status', 'duration', 'time', 'body_size')

    def __init__(
        self, method: str, path: str, query: Dict[str, str], headers: Dict[str, str], body_size: int
    ):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body_size = body_size
        self.status: Optional[int] = None  # None while the answer is still being prepared
        self.duration: Optional[float] = None
        self.time = time.time()

    def __repr__(self):
        return f'<RequestRecord {self.method} {self.path} -> {self.status}>'


def parse_query(raw: str) -> List[Tuple[str, str, bool]]:
    """Decode a raw query string into (key, value, extra_eq) triples, in order.

    Plex filter operators put a second `=` after the key's `=` (`title==x`, "is"); `extra_eq`
    records that, since a `=` that belongs to the value would arrive as `%3D`.
    """
    out = []
    for part in raw.split('&'):
        if not part:
            continue
        key, _, value = part.partition('=')
        extra = value.startswith('=')
        if extra:
            value = value[1:]
        out.append((unquote_plus(key), unquote_plus(value), extra))
    return out


class _Response:
    __slots__ = ('status', 'body', 'content_type')

    def __init__(self, status: int, body: bytes = b'', content_type: str = 'text/xml;charset=utf-8'):
        self.status = status
        self.body = body
        self.content_type = content_type


def _item_of(path: str, params) -> Optional[str]:
    """The rating key a request is about, if any: /library/metadata/<key>[/...] or ?id=<key>."""
    if path.startswith('/library/metadata/'):
        return path[len('/library/metadata/') :].split('/', 1)[0]
    for key, value, *_ in params:
        if key == 'id':
            return value
    return None


def _error_page(status: int, text: str) -> _Response:
    body = f'<html><head><title>{text}</title></head><body><h1>{status} {text}</h1></body></html>'
    return _Response(status, body.encode(), 'text/html')


# ----------------------------------------------------------------------------- HTTP plumbing
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many concurrent plugin processes must not overflow backlog
    emulator: 'PlexEmulator'


class _Handler(BaseHTTPRequestHandler):
    # Real Stash (Go net/http) and real Plex set TCP_NODELAY; without it the body of an answer
    # waits ~40 ms for the client's delayed ACK and every test and benchmark measures that stall.
    disable_nagle_algorithm = True
    protocol_version = 'HTTP/1.1'
    server_version = 'PlexMediaServer'
    sys_version = ''

    def setup(self):
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, False)

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def do_GET(self):
        self._dispatch('GET')

    def do_PUT(self):
        self._dispatch('PUT')

    def do_POST(self):
        self._dispatch('POST')

    def do_DELETE(self):
        self._dispatch('DELETE')

    def do_HEAD(self):
        self._dispatch('HEAD')

    def _read_body(self) -> bytes:
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return b''.join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length > 0 else b''

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        if emu._mode == 'down':
            # Raced with going down: behave like a dead server, no answer at all.
            self.close_connection = True
            return
        body = self._read_body()
        started = time.monotonic()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if len(path) > 1:
            path = path.rstrip('/')
        params = parse_query(parts.query)
        record = emu._log_start(method, path, params, self.headers, len(body))
        try:
            resp = emu._respond(method, path, params, self.headers, body)
        except Exception:  # a bug in the emulator: make it loud, answer 500
            emu._note(f'500 {method} {path}\n{traceback.format_exc()}')
            resp = _error_page(500, 'Internal Server Error')
        if emu._mode == 'down':
            self.close_connection = True
            return
        # Complete the record before the client can see the answer, so a test reading the log
        # right after its call returns never finds a half-written record.
        record.duration = time.monotonic() - started
        record.status = resp.status
        try:
            self.send_response(resp.status)
            self.send_header('Content-Type', resp.content_type)
            self.send_header('Content-Length', str(len(resp.body)))
            self.send_header('X-Plex-Protocol', '1.0')
            self.end_headers()
            if method != 'HEAD':
                self.wfile.write(resp.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (e.g. its timeout fired)


# ----------------------------------------------------------------------------- the emulator
class PlexEmulator:
    """A Plex Media Server speaking enough of the XML API for `plexapi` 4.x, on 127.0.0.1.

    Example::

        plex = PlexEmulator(token="secret-token").start()
        sid = plex.add_section("Movies", locations=["/media/movies"])
        rk = plex.add_item(sid, file="/media/movies/a.mp4", size=1234, summary="Hi")
        server = plexapi.server.PlexServer(plex.url, "secret-token")
        ...
        plex.stop()
    """

    def __init__(
        self,
        token: str,
        port: int = 0,
        host: str = '127.0.0.1',
        machine_identifier: Optional[str] = None,
        version: str = DEFAULT_VERSION,
        friendly_name: str = 'PlexSync Emulator',
        quiet: bool = False,
    ):
        self.token = token
        self.host = host
        self._port = int(port)
        self.machine_identifier = machine_identifier or secrets.token_hex(20)
        self.version = version
        self.friendly_name = friendly_name
        self.quiet = quiet
        self.library = Library()
        self.library.warn = self._note
        self.scans: List[Tuple[int, Optional[str]]] = []
        # Called as scan_hook(section_id, path) after a section scan request, e.g. to "discover"
        # a file by calling add_item. Runs on the request thread; must not call stop()/set_fault().
        self.scan_hook: Optional[Callable[[int, Optional[str]], None]] = None
        self.started_at = int(time.time())
        self._log: List[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._mode: Optional[str] = None
        self._delay = 0.0
        self._fail_next: List[Tuple[int, Optional[str], Optional[str]]] = []
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        # Rendered XML, reused while unchanged: per item (keyed by its version) and per tag.
        self._listing_cache: Dict[int, Tuple[int, str, str]] = {}
        self._tag_xml_cache: Dict[Tuple[str, str], str] = {}
        self._started = False
        self._bind_lock = threading.Lock()
        # While 'down': a socket bound to the port and not listening. Connections to it are still
        # refused (no listener), and no other process can take the port before Plex comes back.
        self._hold: Optional[socket.socket] = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self._port}'

    def start(self) -> 'PlexEmulator':
        """Start serving in a background thread; returns self."""
        with self._bind_lock:
            if not self._started:
                self._started = True
                self._bind()  # binds even when 'down', to fix the port
                if self._mode == 'down':
                    self._unbind(hold=True)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        with self._bind_lock:
            self._started = False
            self._unbind()

    def __enter__(self) -> 'PlexEmulator':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _bind(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        httpd = _HTTPServer((self.host, self._port), _Handler)
        httpd.emulator = self
        self._port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={'poll_interval': 0.05},
            name=f'plex-emulator-{self._port}',
            daemon=True,
        )
        self._httpd, self._thread = httpd, thread
        thread.start()

    def _unbind(self, hold: bool = False) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            if not hold and self._hold is not None:
                self._hold.close()
                self._hold = None
            return
        httpd.shutdown()
        httpd.server_close()
        if hold:
            self._hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._hold.bind((self.host, self._port))
        if thread is not None:
            thread.join(5)
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # kill keep-alive connections too, so nothing answers while down
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ faults
    def set_fault(self, mode: Optional[str], delay: float = 0.0) -> None:
        """Switch fault mode: None/'up', 'down', '503', 'slow' (sleep `delay`), 'db_loading', '401'.

        'down' closes the listening socket (connections are refused) and every open connection;
        leaving 'down' binds the same port again.
        """
        if mode not in FAULT_MODES:
            raise ValueError(f'unknown fault mode {mode!r}; use one of {FAULT_MODES}')
        mode = None if mode == 'up' else mode
        with self._bind_lock:
            self._delay = float(delay)
            self._mode = mode
            if mode == 'down' and self._httpd is not None:
                self._unbind(hold=True)
            elif mode != 'down' and self._started and self._httpd is None:
                self._bind()

    @property
    def fault(self) -> Optional[str]:
        return self._mode

    def fail_next(
        self, n: int, status: int = 503, method: Optional[str] = None, item: Optional[int] = None
    ) -> None:
        """Answer the next `n` requests with `status`, before any other check; when given, only
        requests with `method` and only those about the item `item` (a rating key, in the path
        `/library/metadata/<key>...` or as the `id` of a section edit)."""
        rule = (int(status), method.upper() if method else None, None if item is None else str(item))
        with self._fault_lock:
            self._fail_next.extend([rule] * int(n))

    # ------------------------------------------------------------------ request log
    @property
    def requests(self) -> List[RequestRecord]:
        """Every request received so far (a copy), oldest first."""
        with self._log_lock:
            return list(self._log)

    def count(
        self, method: Optional[str] = None, path_prefix: Optional[str] = None, status: Optional[int] = None
    ) -> int:
        """How many logged requests match all the given conditions."""
        n = 0
        for r in self.requests:
            if method is not None and r.method != method.upper():
                continue
            if path_prefix is not None and not r.path.startswith(path_prefix):
                continue
            if status is not None and r.status != status:
                continue
            n += 1
        return n

    def clear_log(self) -> None:
        """Forget every logged request and the recorded scans."""
        with self._log_lock:
            self._log.clear()
        self.scans.clear()

    def _log_start(
        self, method: str, path: str, params: List[Tuple[str, str, bool]], headers: Any, body_size: int
    ) -> RequestRecord:
        query = {}
        for k, v, extra in params:
            query[k] = '***' if k == 'X-Plex-Token' else (('=' + v) if extra else v)
        hdrs = {k: ('***' if k.lower() == 'x-plex-token' else v) for k, v in headers.items()}
        record = RequestRecord(method, path, query, hdrs, body_size)
        with self._log_lock:
            self._log.append(record)
        return record

    def _note(self, message: str) -> None:
        if not self.quiet:
            print(f'[plex-emulator] {message}', file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ library facade
    def add_section(
        self, title: str, locations: Iterable[str] = (), type: str = 'movie', **kwargs: Any
    ) -> int:
        """Create a library section; returns its id."""
        return self.library.add_section(title, list(locations), type=type, **kwargs)

    def add_item(
        self, section_id: int, file: str, size: int = 0, title: Optional[str] = None, **fields: Any
    ) -> int:
        """Add one movie item as a scan would; returns its ratingKey."""
        return self.library.add_item(section_id, file, size, title, **fields)

    def bulk_add(self, section_id: int, items: Iterable[Dict[str, Any]]) -> List[int]:
        """Add many items (dicts with add_item's keys); returns their ratingKeys."""
        return self.library.bulk_add(section_id, items)

    def item(self, rating_key: int) -> Dict[str, Any]:
        """A plain-dict snapshot of one item (see model.Library.snapshot)."""
        return self.library.snapshot(rating_key)

    def find_by_file(self, path: str) -> Optional[int]:
        """The ratingKey of the item with exactly this file path (first added), or None."""
        return self.library.find_by_file(path)

    def find_all_by_file(self, path: str) -> List[int]:
        """Every ratingKey with this file path (a folder can be in two sections)."""
        return self.library.find_all_by_file(path)

    def update_item(self, rating_key: int, **fields: Any) -> None:
        """Change an item behind the plugin's back (as an edit in Plex would); bumps updatedAt."""
        self.library.update_item(rating_key, **fields)

    def remove_item(self, rating_key: int) -> None:
        self.library.remove_item(rating_key)

    # ------------------------------------------------------------------ request handling
    def _respond(
        self, method: str, path: str, params: List[Tuple[str, str, bool]], headers: Any, body: bytes
    ) -> _Response:
        with self._fault_lock:
            forced = None
            for i, (_status, only, item) in enumerate(self._fail_next):
                if (only is None or only == method.upper()) and (
                    item is None or item == _item_of(path, params)
                ):
                    forced = self._fail_next.pop(i)[0]
                    break
        if forced is not None:
            return _error_page(forced, _reason(forced))
        mode, delay = self._mode, self._delay
        if mode == 'slow' and delay > 0:
            time.sleep(delay)
        if mode == '401':
            return _error_page(401, 'Unauthorized')
        if mode == '503':
            return _error_page(503, 'Service Unavailable')
        if mode == 'db_loading' and path not in ('/', '/identity'):
            return _error_page(503, 'Service Unavailable')
        token = headers.get('X-Plex-Token')
        if token is None:
            token = next((v for k, v, _ in params if k == 'X-Plex-Token'), None)
        # Plex answers /identity to anyone (it is how clients find a server before they sign in);
        # plexapi's own tests and Plex's clients call it without a token.
        if token != self.token and not (path == '/identity' and method in ('GET', 'HEAD')):
            return _error_page(401, 'Unauthorized')
        try:
            return self._route(method, path, params, body, headers)
        except NotFoundError as exc:
            self._note(f'404 {method} {path}: {exc.args[0] if exc.args else exc}')
            return _error_page(404, 'Not Found')
        except EditError as exc:
            self._note(f'400 {method} {path}: {exc}')
            return _error_page(400, 'Bad Request')

    def _route(
        self, method: str, path: str, params: List[Tuple[str, str, bool]], body: bytes, headers: Any
    ) -> _Response:
        get = method in ('GET', 'HEAD')
        if path == '/' and get:
            return _Response(200, self._root_xml())
        if path == '/identity' and get:
            return _Response(
                200,
                container(
                    [
                        ('size', 0),
                        ('claimed', 1),
                        ('machineIdentifier', self.machine_identifier),
                        ('version', self.version),
                    ]
                ),
            )
        if path == '/library' and get:
            return _Response(200, self._library_xml())
        if path == '/library/sections' and get:
            return _Response(200, self._sections_xml())
        if path == '/library/all' and get:
            return self._listing(None, params, headers)
        if path == '/hubs/search' and get:
            return self._hub_search(params)
        if path == '/:/rate' and method == 'PUT':
            return self._rate(params)
        m = re.match(r'^/library/collections/(\d+)(?:/(children))?$', path)
        if m and get:
            collection = self.library.collection(int(m.group(1)))
            if m.group(2):
                return self._collection_children(collection, params, headers)
            return _Response(200, self._collection_container(collection))

        m = re.match(r'^/library/sections/(\d+)(?:/([^/]+))?$', path)
        if m:
            sid, sub = int(m.group(1)), m.group(2)
            section = self.library.section(sid)
            if sub is None and get:
                return _Response(200, self._section_xml(section))
            if sub in ('all', 'search') and get and _param(params, 'type') == '18':
                return self._collection_listing(section, params, headers)
            if sub in ('all', 'search') and get:
                return self._listing(sid, params, headers)
            if sub == 'all' and method == 'PUT':
                ids = next((v for k, v, _ in params if k == 'id'), None)
                rks = [int(x) for x in ids.split(',') if x.strip()] if ids else None
                self.library.apply_edit(_edit_params(params), section_id=sid, rating_keys=rks)
                return _Response(200)
            if sub == 'refresh' and get:
                path_arg = next((v for k, v, _ in params if k == 'path'), None)
                self.scans.append((sid, path_arg))
                hook = self.scan_hook
                if hook is not None:
                    hook(sid, path_arg)
                return _Response(200)
            if sub == 'refresh' and method == 'DELETE':
                return _Response(200)
            if sub == 'collections' and get:
                meta = self._meta_xml(section, 'collection') if _flag(params, 'includeMeta') else ''
                return _Response(200, container(self._listing_attrs(section, 0, 0, 0), meta))
            if sub in TAG_ELEMENTS or sub == 'role':
                if get:
                    return _Response(200, self._filter_choices(section, sub))
            if sub in ('analyze', 'emptyTrash') and method == 'PUT':
                return _Response(200)

        m = re.match(r'^/library/metadata/([\d,]+)(?:/([^/]+)(?:/([^/]+))?)?$', path)
        if m:
            keys, sub, extra = m.group(1), m.group(2), m.group(3)
            if sub is None:
                if get and self._is_collection(keys):
                    return _Response(200, self._collection_container(self.library.collection(int(keys))))
                if get:
                    return self._metadata(keys)
                rk = int(keys.split(',')[0])
                if method == 'PUT':
                    self.library.apply_edit(_edit_params(params), rating_keys=[rk])
                    return _Response(200)
                if method == 'DELETE':
                    self.library.remove_item(rk)
                    return _Response(200)
            elif sub == 'children' and get and self._is_collection(keys):
                return self._collection_children(self.library.collection(int(keys)), params, headers)
            else:
                return self._metadata_sub(method, int(keys.split(',')[0]), sub, extra, params, body)

        self._note(f'404 {method} {path} (not emulated)')
        return _error_page(404, 'Not Found')

    def _metadata_sub(
        self,
        method: str,
        rk: int,
        sub: str,
        extra: Optional[str],
        params: List[Tuple[str, str, bool]],
        body: bytes,
    ) -> _Response:
        get = method in ('GET', 'HEAD')
        self.library.item(rk)  # 404 for unknown items
        if sub == 'refresh' and method == 'PUT':
            self.library.refresh(rk)
            return _Response(200)
        if sub in ('posters', 'arts'):
            kind = 'poster' if sub == 'posters' else 'art'
            if get:
                return _Response(200, self._uploads_xml(rk, kind))
            if method == 'POST':
                url = next((v for k, v, _ in params if k == 'url'), None)
                data = body if body else None
                if data is None and url:
                    data = self._download(url)
                elif data is None:
                    raise EditError(f'{sub} upload without url or body')
                self.library.upload(rk, kind, data, url if not body else None)
                return _Response(200)
        if sub in ('poster', 'art') and method == 'PUT':  # select an uploaded image
            url = next((v for k, v, _ in params if k == 'url'), None)
            if not url:
                raise EditError('select without url')
            self.library.select_upload(rk, sub, url)
            return _Response(200)
        if sub in ('thumb', 'art') and get:
            with self.library.lock:
                up = self.library.item(rk).poster if sub == 'thumb' else self.library.item(rk).art
            if up is None or up.data is None:
                raise NotFoundError(f'no {sub} for item {rk}')
            return _Response(200, up.data, _image_type(up.data))
        if sub in ('thumb', 'art') and method == 'DELETE':
            self.library.delete_image(rk, 'poster' if sub == 'thumb' else 'art')
            return _Response(200)
        if sub == 'file' and get:
            url = next((v for k, v, _ in params if k == 'url'), '')
            with self.library.lock:
                item = self.library.item(rk)
                up = next((u for u in item.posters + item.arts if u.key == url), None)
            if up is None or up.data is None:
                raise NotFoundError(f'no image {url} for item {rk}')
            return _Response(200, up.data, _image_type(up.data))
        if sub == 'analyze' and method == 'PUT':
            return _Response(200)
        self._note(f'404 {method} /library/metadata/{rk}/{sub} (not emulated)')
        return _error_page(404, 'Not Found')

    def _download(self, url: str) -> Optional[bytes]:
        """Fetch an image the way Plex does for `?url=` uploads; None if it cannot."""
        if not url.lower().startswith(('http://', 'https://')):
            self._note(f'poster url {url!r} is not http(s); stored without image data')
            return None
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read()
        except Exception as exc:  # Plex accepts the request and just has no image
            self._note(f'could not download {url!r}: {exc}')
            return None

    # ------------------------------------------------------------------ XML bodies
    def _root_xml(self) -> bytes:
        lib = self.library
        with lib.lock:
            n_sections = len(lib.sections)
        return container(
            [
                ('size', 3),
                ('allowCameraUpload', 0),
                ('allowChannelAccess', 1),
                ('allowMediaDeletion', 1),
                ('allowSharing', 1),
                ('allowSync', 1),
                ('backgroundProcessing', 1),
                ('certificate', 0),
                ('companionProxy', 1),
                ('countryCode', 'usa'),
                ('diagnostics', 'logs,databases,streaminglogs'),
                ('eventStream', 1),
                ('friendlyName', self.friendly_name),
                ('hubSearch', 1),
                ('itemClusters', 1),
                ('machineIdentifier', self.machine_identifier),
                ('mediaProviders', 1),
                ('multiuser', 1),
                ('myPlex', 1),
                ('myPlexMappingState', 'mapped'),
                ('myPlexSigninState', 'ok'),
                ('myPlexSubscription', 0),
                ('myPlexUsername', 'plexsync@example.invalid'),
                ('ownerFeatures', 'camera_upload,collections,content_filter,hardware_transcoding'),
                ('photoAutoTag', 1),
                ('platform', 'Linux'),
                ('platformVersion', '6.1.0'),
                ('pluginHost', 1),
                ('readOnlyLibraries', 0),
                ('requestParametersInCookie', 1),
                ('streamingBrainVersion', 2),
                ('sync', 1),
                ('transcoderActiveVideoSessions', 0),
                ('transcoderAudio', 1),
                ('transcoderLyrics', 1),
                ('transcoderPhoto', 1),
                ('transcoderSubtitles', 1),
                ('transcoderVideo', 1),
                ('transcoderVideoBitrates', '64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000'),
                ('transcoderVideoQualities', '0,1,2,3,4,5,6,7,8,9,10,11,12'),
                ('transcoderVideoResolutions', '128,128,160,240,320,480,768,720,720,1080,1080,1080,1080'),
                ('updatedAt', self.started_at),
                ('updater', 1),
                ('version', self.version),
                ('voiceSearch', 1),
            ],
            element('Directory', [('count', 1), ('key', 'hubs'), ('title', 'hubs')])
            + element('Directory', [('count', n_sections), ('key', 'library'), ('title', 'library')])
            + element('Directory', [('count', 1), ('key', 'playlists'), ('title', 'playlists')]),
        )

    def _library_xml(self) -> bytes:
        return container(
            [
                ('size', 3),
                ('allowSync', 0),
                ('art', '/:/resources/library-art.png'),
                ('content', ''),
                ('identifier', 'com.plexapp.plugins.library'),
                ('mediaTagPrefix', '/system/bundle/media/flags/'),
                ('mediaTagVersion', MEDIA_TAG_VERSION),
                ('title1', 'Plex Library'),
                ('title2', ''),
            ],
            element('Directory', [('key', 'sections'), ('title', 'Library Sections')])
            + element('Directory', [('key', 'recentlyAdded'), ('title', 'Recently Added Content')])
            + element('Directory', [('key', 'onDeck'), ('title', 'On Deck Content')]),
        )

    def _section_directory(self, section: Section) -> str:
        locations = ''.join(
            element('Location', [('id', section.id * 100 + i), ('path', p)])
            for i, p in enumerate(section.locations)
        )
        return element(
            'Directory',
            [
                ('allowSync', 1),
                ('art', '/:/resources/movie-fanart.jpg'),
                ('composite', f'/library/sections/{section.id}/composite/{section.updated_at}'),
                ('filters', 1),
                ('refreshing', 0),
                ('thumb', '/:/resources/movie.png'),
                ('key', section.id),
                ('type', section.type),
                ('title', section.title),
                ('agent', section.agent),
                ('scanner', section.scanner),
                ('language', 'en-US'),
                ('uuid', section.uuid),
                ('updatedAt', section.updated_at),
                ('createdAt', section.created_at),
                ('scannedAt', section.scanned_at),
                ('content', 1),
                ('directory', 1),
                ('contentChangedAt', self.library.version),
                ('hidden', 0),
            ],
            locations,
        )

    def _sections_xml(self) -> bytes:
        with self.library.lock:
            sections = list(self.library.sections.values())
            dirs = ''.join(self._section_directory(s) for s in sections)
        return container(
            [
                ('size', len(sections)),
                ('allowSync', 0),
                ('identifier', 'com.plexapp.plugins.library'),
                ('mediaTagPrefix', '/system/bundle/media/flags/'),
                ('mediaTagVersion', MEDIA_TAG_VERSION),
                ('title1', 'Plex Library'),
            ],
            dirs,
        )

    def _section_xml(self, section: Section) -> bytes:
        browse = [
            ('all', 'All Movies'),
            ('unwatched', 'Unplayed'),
            ('newest', 'Recently Released'),
            ('recentlyAdded', 'Recently Added'),
            ('collection', 'By Collection'),
            ('genre', 'By Genre'),
            ('year', 'By Year'),
            ('folder', 'By Folder'),
        ]
        dirs = ''.join(element('Directory', [('key', k), ('title', t)]) for k, t in browse)
        return container(
            [
                ('size', len(browse)),
                ('allowSync', 0),
                ('art', '/:/resources/movie-fanart.jpg'),
                ('content', 'secondary'),
                ('identifier', 'com.plexapp.plugins.library'),
                ('librarySectionID', section.id),
                ('mediaTagPrefix', '/system/bundle/media/flags/'),
                ('mediaTagVersion', MEDIA_TAG_VERSION),
                ('thumb', '/:/resources/movie.png'),
                ('title1', section.title),
                ('viewGroup', 'secondary'),
                ('viewMode', 65592),
            ],
            dirs,
        )

    def _listing_attrs(
        self, section: Optional[Section], size: int, total: int, offset: int
    ) -> List[Tuple[str, Any]]:
        pairs: List[Tuple[str, Any]] = [
            ('size', size),
            ('totalSize', total),
            ('offset', offset),
            ('allowSync', 1),
            ('identifier', 'com.plexapp.plugins.library'),
            ('mediaTagPrefix', '/system/bundle/media/flags/'),
            ('mediaTagVersion', MEDIA_TAG_VERSION),
        ]
        if section is not None:
            pairs += [
                ('art', '/:/resources/movie-fanart.jpg'),
                ('librarySectionID', section.id),
                ('librarySectionTitle', section.title),
                ('librarySectionUUID', section.uuid),
                ('nocache', 1),
                ('thumb', '/:/resources/movie.png'),
                ('title1', section.title),
                ('title2', 'All Movies'),
                ('viewGroup', 'movie'),
                ('viewMode', 131122),
            ]
        return pairs

    def _listing(
        self, section_id: Optional[int], params: List[Tuple[str, str, bool]], headers: Any
    ) -> _Response:
        lib = self.library
        section = lib.section(section_id) if section_id is not None else None
        items = lib.query(section_id, params)
        total = len(items)
        start, size = _paging(params, headers)
        page = items[start : start + size] if size is not None else items[start:]
        with lib.lock:
            body = ''.join(self._listing_video(it) for it in page)
        meta = (
            self._meta_xml(section, 'movie') if section is not None and _flag(params, 'includeMeta') else ''
        )
        return _Response(200, container(self._listing_attrs(section, len(page), total, start), meta + body))

    def _video_attrs(self, item: Item, section: Optional[Section]) -> List[Tuple[str, Any]]:
        f = item.fields
        rk = item.rating_key
        poster, art = item.poster, item.art
        return [
            ('ratingKey', rk),
            ('key', f'/library/metadata/{rk}'),
            ('guid', item.guid),
            ('type', 'movie'),
            ('title', item.title),
            ('titleSort', f.get('titleSort') or None),
            ('librarySectionTitle', section.title if section else None),
            ('librarySectionID', item.section_id),
            ('librarySectionKey', f'/library/sections/{item.section_id}'),
            ('originalTitle', f.get('originalTitle')),
            ('editionTitle', f.get('editionTitle')),
            ('contentRating', f.get('contentRating')),
            ('studio', f.get('studio')),
            ('summary', f.get('summary') or ''),
            ('tagline', f.get('tagline')),
            ('year', f.get('year')),
            ('originallyAvailableAt', f.get('originallyAvailableAt')),
            ('thumb', f'/library/metadata/{rk}/thumb/{item.updated_at}' if poster else None),
            ('art', f'/library/metadata/{rk}/art/{item.updated_at}' if art else None),
            ('duration', f.get('duration')),
            ('addedAt', item.added_at),
            ('updatedAt', item.updated_at),
            ('userRating', item.user_rating),
            ('lastRatedAt', item.last_rated_at),
        ]

    def _media_xml(self, item: Item) -> str:
        name = re.split(r'[\\/]', item.file)[-1]
        ext = name.rpartition('.')[2].lower() if '.' in name else ''
        cont = _container_of(ext)
        duration = item.fields.get('duration')
        part = element(
            'Part',
            [
                ('id', item.part_id),
                ('key', f'/library/parts/{item.part_id}/{item.added_at}/file.{quote(ext or "mp4")}'),
                ('duration', duration),
                ('file', item.file),
                ('size', item.size),
                ('container', cont),
            ],
        )
        return element(
            'Media',
            [
                ('id', item.media_id),
                ('duration', duration),
                ('container', cont),
                ('videoResolution', '1080'),
                ('videoCodec', 'h264'),
                ('audioCodec', 'aac'),
            ],
            part,
        )

    def _tags_xml(self, item: Item, limit: Optional[int]) -> str:
        out = []
        for kind, elem in TAG_ELEMENTS.items():
            tags = item.tags.get(kind)
            if not tags:
                continue
            if limit is not None:
                tags = tags[: LISTING_TAG_LIMITS.get(kind, limit)]
            cache = self._tag_xml_cache
            for t in tags:
                xml = cache.get((kind, t))
                if xml is None:
                    tid = self.library.tag_id(kind, t)
                    xml = element(elem, [('id', tid), ('filter', f'{kind}={tid}'), ('tag', t)])
                    cache[(kind, t)] = xml
                out.append(xml)
        return ''.join(out)

    def _listing_video(self, item: Item) -> str:
        """A `<Video>` as section listings show it (cached until the item changes)."""
        section = self.library.sections.get(item.section_id)
        title = section.title if section else ''
        cached = self._listing_cache.get(item.rating_key)
        if cached is not None and cached[0] == item.version and cached[1] == title:
            return cached[2]
        xml = element(
            'Video',
            self._video_attrs(item, section),
            self._media_xml(item) + self._tags_xml(item, LISTING_TAG_LIMIT),
        )
        self._listing_cache[item.rating_key] = (item.version, title, xml)
        return xml

    def _full_video(self, item: Item) -> str:
        section = self.library.sections.get(item.section_id)
        fields = ''.join(element('Field', [('locked', 1), ('name', name)]) for name in sorted(item.locked))
        guid = element('Guid', [('id', item.guid)]) if not item.guid.startswith('local://') else ''
        return element(
            'Video',
            self._video_attrs(item, section),
            self._media_xml(item) + self._tags_xml(item, None) + guid + fields,
        )

    def _metadata(self, keys: str) -> _Response:
        lib = self.library
        with lib.lock:
            items = []
            for k in keys.split(','):
                if not k:
                    continue
                try:
                    items.append(lib.items[int(k)])
                except KeyError:
                    continue
            if not items:
                raise NotFoundError(f'no item {keys}')
            body = ''.join(self._full_video(it) for it in items)
            first = lib.sections.get(items[0].section_id)
        pairs: List[Tuple[str, Any]] = [
            ('size', len(items)),
            ('allowSync', 1),
            ('identifier', 'com.plexapp.plugins.library'),
        ]
        if first is not None:
            pairs += [
                ('librarySectionID', first.id),
                ('librarySectionTitle', first.title),
                ('librarySectionUUID', first.uuid),
            ]
        pairs += [('mediaTagPrefix', '/system/bundle/media/flags/'), ('mediaTagVersion', MEDIA_TAG_VERSION)]
        return _Response(200, container(pairs, body))

    def _uploads_xml(self, rk: int, kind: str) -> bytes:
        with self.library.lock:
            item = self.library.item(rk)
            uploads = list(item.posters if kind == 'poster' else item.arts)
            selected = item.poster if kind == 'poster' else item.art
        photos = ''.join(
            element(
                'Photo',
                [
                    ('key', f'/library/metadata/{rk}/file?url={quote(u.key, safe="")}'),
                    ('ratingKey', u.key),
                    ('selected', 1 if u is selected else 0),
                    ('thumb', f'/library/metadata/{rk}/file?url={quote(u.key, safe="")}'),
                ],
            )
            for u in uploads
        )
        return container(
            [
                ('size', len(uploads)),
                ('identifier', 'com.plexapp.plugins.library'),
                ('mediaTagPrefix', '/system/bundle/media/flags/'),
                ('mediaTagVersion', MEDIA_TAG_VERSION),
            ],
            photos,
        )

    # Collections (plexapi: LibrarySection.collections(), Collection.items()) and ratings
    # (plexapi: mixins/rating.py RatingMixin.rate).
    def _rate(self, params: List[Tuple[str, str, bool]]) -> _Response:
        key, rating = _param(params, 'key'), _param(params, 'rating')
        if _param(params, 'identifier') != 'com.plexapp.plugins.library' or key is None or rating is None:
            raise EditError('rate needs key, identifier=com.plexapp.plugins.library and rating')
        if not key.isdigit():
            raise EditError(f'invalid key {key!r}')
        self.library.rate(int(key), rating)
        return _Response(200)

    def _is_collection(self, keys: str) -> bool:
        if not keys.isdigit():
            return False
        try:
            self.library.collection(int(keys))
        except NotFoundError:
            return False
        return True

    def _collection_directory(self, c: Collection) -> str:
        section = self.library.sections.get(c.section_id)
        children = self.library.collection_children(c)
        years = [it.fields.get('year') for it in children if it.fields.get('year')]
        return element(
            'Directory',
            [
                ('ratingKey', c.rating_key),
                ('key', f'/library/collections/{c.rating_key}/children'),
                ('guid', f'collection://{c.rating_key}'),
                ('type', 'collection'),
                ('title', c.title),
                ('librarySectionTitle', section.title if section else None),
                ('librarySectionID', c.section_id),
                ('librarySectionKey', f'/library/sections/{c.section_id}'),
                ('subtype', 'movie'),
                ('index', c.rating_key),
                ('childCount', len(children)),
                ('minYear', min(years) if years else None),
                ('maxYear', max(years) if years else None),
                ('smart', 0),
                ('addedAt', c.added_at),
                ('updatedAt', c.updated_at),
            ],
        )

    def _collection_container(self, c: Collection) -> bytes:
        with self.library.lock:
            body = self._collection_directory(c)
        return container(
            [('size', 1), ('identifier', 'com.plexapp.plugins.library'), ('librarySectionID', c.section_id)],
            body,
        )

    def _collection_listing(
        self, section: Section, params: List[Tuple[str, str, bool]], headers: Any
    ) -> _Response:
        found = self.library.section_collections(section.id)
        for key, value, extra in params:
            want = value.casefold()
            if key == 'title' and not extra:
                found = [c for c in found if want in c.title.casefold()]
            elif key in ('title', 'title='):
                found = [c for c in found if c.title.casefold() == want]
        start, size = _paging(params, headers)
        page = found[start : start + size] if size is not None else found[start:]
        with self.library.lock:
            body = ''.join(self._collection_directory(c) for c in page)
        return _Response(200, container(self._listing_attrs(section, len(page), len(found), start), body))

    def _collection_children(
        self, c: Collection, params: List[Tuple[str, str, bool]], headers: Any
    ) -> _Response:
        section = self.library.sections.get(c.section_id)
        items = self.library.collection_children(c)
        start, size = _paging(params, headers)
        page = items[start : start + size] if size is not None else items[start:]
        with self.library.lock:
            body = ''.join(self._listing_video(it) for it in page)
        return _Response(200, container(self._listing_attrs(section, len(page), len(items), start), body))

    def _hub_search(self, params: List[Tuple[str, str, bool]]) -> _Response:
        query = next((v for k, v, _ in params if k == 'query'), '')
        section_id = next((v for k, v, _ in params if k == 'sectionId'), None)
        limit = next((v for k, v, _ in params if k == 'limit'), None)
        sid = int(section_id) if section_id and section_id.isdigit() else None
        items = self.library.query(sid, [('title', query, False)]) if query else []
        if limit and limit.isdigit():
            items = items[: int(limit)]
        with self.library.lock:
            body = ''.join(self._listing_video(it) for it in items)
        hub = element(
            'Hub',
            [
                ('hubIdentifier', 'movie'),
                ('key', '/hubs/search/movie'),
                ('more', 0),
                ('size', len(items)),
                ('style', 'shelf'),
                ('title', 'Movies'),
                ('type', 'movie'),
            ],
            body,
        )
        return _Response(200, container([('size', 1)], hub))

    def _filter_choices(self, section: Section, kind: str) -> bytes:
        kind = 'actor' if kind == 'role' else kind
        with self.library.lock:
            seen: Dict[str, int] = {}
            for item in section.items.values():
                for t in item.tags.get(kind, ()):
                    if t not in seen:
                        seen[t] = self.library.tag_id(kind, t)
        dirs = ''.join(
            element(
                'Directory',
                [
                    ('fastKey', f'/library/sections/{section.id}/all?{kind}={tid}'),
                    ('key', tid),
                    ('title', t),
                    ('type', kind),
                    ('tagType', TAG_TYPES.get(kind)),
                ],
            )
            for t, tid in sorted(seen.items(), key=lambda kv: kv[0].casefold())
        )
        return container(
            [
                ('size', len(seen)),
                ('allowSync', 0),
                ('content', 'secondary'),
                ('identifier', 'com.plexapp.plugins.library'),
                ('librarySectionID', section.id),
                ('title1', section.title),
                ('title2', kind),
            ],
            dirs,
        )

    def _meta_xml(self, section: Section, libtype: str) -> str:
        sid = section.id
        if libtype == 'collection':
            title = element('Field', [('key', 'title'), ('title', 'Title'), ('type', 'string')])
            string_ops = ''.join(
                element('Operator', [('key', k), ('title', t)])
                for k, t in (('=', 'contains'), ('!=', 'does not contain'), ('==', 'is'), ('!==', 'is not'))
            )
            return element(
                'Meta',
                [],
                element(
                    'Type',
                    [
                        ('key', f'/library/sections/{sid}/collections'),
                        ('type', 'collection'),
                        ('title', 'Collections'),
                        ('active', 0),
                    ],
                    title,
                )
                + element('FieldType', [('type', 'string')], string_ops),
            )
        filters = [
            ('genre', 'Genre'),
            ('year', 'Year'),
            ('collection', 'Collection'),
            ('actor', 'Actor'),
            ('director', 'Director'),
            ('label', 'Labels'),
            ('studio', 'Studio'),
            ('unwatched', 'Unplayed'),
        ]
        ftypes = {'year': 'integer', 'studio': 'string', 'unwatched': 'boolean'}
        filter_xml = ''.join(
            element(
                'Filter',
                [
                    ('filter', f),
                    ('filterType', ftypes.get(f, 'string')),
                    ('key', f'/library/sections/{sid}/{f}'),
                    ('title', t),
                    ('type', 'filter'),
                ],
            )
            for f, t in filters
        )
        sorts = [
            ('titleSort', 'asc', 'Title'),
            ('originallyAvailableAt', 'desc', 'Release Date'),
            ('addedAt', 'desc', 'Date Added'),
            ('year', 'desc', 'Year'),
            ('duration', 'desc', 'Duration'),
            ('title', 'asc', 'Title (exact)'),
            ('studio', 'asc', 'Studio'),
        ]
        sort_xml = ''.join(
            element(
                'Sort',
                [
                    ('default', 'asc' if k == 'titleSort' else None),
                    ('defaultDirection', d),
                    ('descKey', f'{k}:desc'),
                    ('key', k),
                    ('title', t),
                ],
            )
            for k, d, t in sorts
        )
        fields = [
            ('title', 'Title', 'string'),
            ('studio', 'Studio', 'string'),
            ('contentRating', 'Content Rating', 'string'),
            ('year', 'Year', 'integer'),
            ('originallyAvailableAt', 'Release Date', 'date'),
            ('addedAt', 'Date Added', 'date'),
            ('genre', 'Genre', 'tag'),
            ('actor', 'Actor', 'tag'),
            ('collection', 'Collection', 'tag'),
            ('label', 'Label', 'tag'),
            ('director', 'Director', 'tag'),
            ('writer', 'Writer', 'tag'),
            ('producer', 'Producer', 'tag'),
            ('country', 'Country', 'tag'),
            ('duration', 'Duration', 'integer'),
            ('unwatched', 'Unplayed', 'boolean'),
        ]
        field_xml = ''.join(element('Field', [('key', k), ('title', t), ('type', ty)]) for k, t, ty in fields)
        type_xml = element(
            'Type',
            [
                ('key', f'/library/sections/{sid}/all?type=1'),
                ('type', 'movie'),
                ('title', 'Movies'),
                ('active', 1),
            ],
            filter_xml + sort_xml + field_xml,
        )
        operators = {
            'tag': [('=', 'is'), ('!=', 'is not')],
            'integer': [('=', 'is'), ('!=', 'is not'), ('>>=', 'is greater than'), ('<<=', 'is less than')],
            'string': [
                ('=', 'contains'),
                ('!=', 'does not contain'),
                ('==', 'is'),
                ('!==', 'is not'),
                ('<=', 'begins with'),
                ('>=', 'ends with'),
            ],
            'boolean': [('=', 'is true'), ('!=', 'is false')],
            'date': [('<<=', 'is before'), ('>>=', 'is after')],
        }
        ft_xml = ''.join(
            element(
                'FieldType',
                [('type', ty)],
                ''.join(element('Operator', [('key', k), ('title', t)]) for k, t in ops),
            )
            for ty, ops in operators.items()
        )
        return element('Meta', [], type_xml + ft_xml)


def _param(params: List[Tuple[str, str, bool]], name: str) -> Optional[str]:
    return next((v for k, v, _ in params if k == name), None)


def _flag(params: List[Tuple[str, str, bool]], name: str) -> bool:
    return any(k == name and v not in ('0', '') for k, v, _ in params)


def _edit_params(params: List[Tuple[str, str, bool]]) -> List[Tuple[str, str]]:
    return [(k, ('=' + v) if extra else v) for k, v, extra in params]


def _paging(params: List[Tuple[str, str, bool]], headers: Any) -> Tuple[int, Optional[int]]:
    """Container start/size from the query string, else the X-Plex-Container-* headers."""

    def pick(name: str) -> Optional[int]:
        raw = next((v for k, v, _ in params if k == name), None)
        if raw is None and headers is not None:
            raw = headers.get(name)
        try:
            return int(raw) if raw not in (None, '') else None
        except ValueError:
            return None

    start = pick('X-Plex-Container-Start') or 0
    size = pick('X-Plex-Container-Size')
    return max(start, 0), (max(size, 0) if size is not None else None)


def _image_type(data: bytes) -> str:
    if data.startswith(b'\x89PNG'):
        return 'image/png'
    if data.startswith(b'GIF8'):
        return 'image/gif'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'image/webp'
    return 'image/jpeg'


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return 'Error'
