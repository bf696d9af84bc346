"""Serve a Catalog on 127.0.0.1 as a PEP 691/503 index, with serials, ETags and injectable faults.

Also serves a mirror's web/ tree with PEP 691 content negotiation, the way the httpd role does,
so that tests can point pip and uv at what the engine published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import http.client
import json
import os
import ssl
import subprocess
import threading
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from .build import Catalog, FixtureFile

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclasses.dataclass
class Faults:
    """What the upstream does wrong; tests change these while the server runs."""

    html_only: bool = False  # ignore JSON in Accept, like some proxies
    no_etag: bool = False
    # an ETag over the page's files alone, not its serial: a serial moved by an event that changed no file (an
    # owner or description edit on the public index) is then answered 304, with the new serial in its header
    etag_without_serial: bool = False
    # no X-PyPI-Last-Serial header, and the project pages' JSON "_last-serial" as a string, as a proxy in front
    # of the public index was seen to serve them
    proxy_serials: bool = False
    fail_status: dict[str, int] = dataclasses.field(default_factory=dict)  # path suffix -> remaining 503s
    truncate: dict[str, int] = dataclasses.field(default_factory=dict)  # filename -> remaining cut bodies
    corrupt: set[str] = dataclasses.field(default_factory=set)  # filenames whose bytes are altered
    wrong_hash: set[str] = dataclasses.field(default_factory=set)  # filenames listed with a false sha256
    unsafe_listing: list[str] = dataclasses.field(default_factory=list)  # extra hostile filenames per page
    delay_files: float = 0.0
    latency: float = 0.0  # seconds every request waits first, like a distant index
    # filenames served with "Content-Encoding: gzip" over their own bytes (Apache's AddEncoding for .gz)
    gzip_labelled: set[str] = dataclasses.field(default_factory=set)
    # filenames whose /packages/ URL answers 302 to the same path under /moved/, where the file is served
    redirect_files: set[str] = dataclasses.field(default_factory=set)
    # close every connection after a file, without saying so ("Connection: close"): a server that drops
    # idle keep-alive connections, which the client learns only on its next request
    drop_after_file: bool = False
    # filename -> remaining bodies cut in half on a connection that said it would stay open
    cut_silently: dict[str, int] = dataclasses.field(default_factory=dict)
    # filenames whose body stops halfway for this many seconds, the connection left open
    stall_files: set[str] = dataclasses.field(default_factory=set)
    stall_seconds: float = 10.0
    # the Authorization header every request needs (401 without it), except under /moved/, which stands for
    # files on another host (a CDN) that needs none
    require_auth: Optional[str] = None
    # the host name redirect_files send to (e.g. "localhost" for 127.0.0.1): another origin, same server
    redirect_host: Optional[str] = None
    # the host name the JSON pages give absolute file URLs on (under /moved/), as the public index lists its
    # files on another host
    files_host: Optional[str] = None
    # answer a Range request for a file with the whole file (200), as some servers do
    no_ranges: bool = False
    # answer every address with the same HTML sign-in page (200), as a proxy whose login has expired does, or
    # with sign_in_body instead, when set (one that links its help and a password reset, as a real one would)
    sign_in_page: bool = False
    sign_in_body: Optional[bytes] = None
    # the one hash the pages give of each file, instead of its sha256: "md5", as pypiserver gives by default
    hash_algo: Optional[str] = None


SIGN_IN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in to continue</h1>"
                b"<form method='post' action='/login'><input name='user'><input type='password' name='password'>"
                b"</form></body></html>")



class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each response waits for a delayed ACK
    # (about 40 ms), which no real index server does.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.count_connection()

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_POST(self) -> None:
        self.server.record(self.command, self.path, self.headers)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        self.server.handle_post(self, self.path, body)

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict] = None,
              head: bool = False, length: Optional[int] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        self.server.record(self.command, self.path, self.headers)
        path = unquote(self.path.split("?", 1)[0])
        faults = self.server.faults
        with self.server.fault_lock:
            for suffix, remaining in list(faults.fail_status.items()):
                if path.endswith(suffix) and remaining > 0:
                    faults.fail_status[suffix] = remaining - 1
                    self._send(503, b"unavailable\n", "text/plain", head=head)
                    return
        if faults.sign_in_page:
            self._send(200, faults.sign_in_body or SIGN_IN_PAGE, "text/html; charset=utf-8", head=head)
            return
        if (faults.require_auth is not None and not path.startswith("/moved/")
                and self.headers.get("Authorization") != faults.require_auth):
            self._send(401, b"login required\n", "text/plain", {"WWW-Authenticate": 'Basic realm="fixture"'}, head)
            return
        self.server.handle_path(self, path, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: more clients connecting at once (several processes of workers)
    # overflowed it, and the dropped SYNs cost each a 1 s retransmission.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        super().__init__(address, handler)
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.connections = 0  # accepted so far
        self.request_headers: list[dict[str, str]] = []
        self._log_lock = threading.Lock()
        self.fault_lock = threading.Lock()

    def count_connection(self) -> None:
        with self._log_lock:
            self.connections += 1

    def record(self, method: str, path: str, headers) -> None:
        with self._log_lock:
            self.requests.append((method, path))
            self.request_headers.append(dict(headers.items()))

    def handle_path(self, handler: _Handler, path: str, head: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle_post(self, handler: _Handler, path: str, body: bytes) -> None:
        handler._send(405, b"", "text/plain")


class UpstreamHTTPServer(_Server):
    def __init__(self, catalog: Catalog, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.catalog = catalog

    def _wants_json(self, handler: _Handler) -> bool:
        return not self.faults.html_only and JSON_TYPE in handler.headers.get("Accept", "")

    def _listed_hash(self, entry: FixtureFile) -> tuple[str, str]:
        """(algorithm, digest) as the pages give it."""
        algorithm = self.faults.hash_algo or "sha256"
        if entry.filename in self.faults.wrong_hash:
            return algorithm, hashlib.new(algorithm, b"not the file").hexdigest()
        if algorithm == "sha256":
            return algorithm, entry.sha256
        with open(entry.disk_path, "rb") as stream:
            return algorithm, hashlib.new(algorithm, stream.read()).hexdigest()

    def _project_document(self, project: str, files: list[FixtureFile], as_json: bool, serial: int,
                          status: Optional[tuple[str, Optional[str]]] = None) -> bytes:
        if status and status[0] == "quarantined":
            files = []  # as the public index lists a quarantined project
        if as_json:
            entries = []
            for entry in files:
                url = entry.url_path
                if self.faults.files_host:
                    url = f"http://{self.faults.files_host}:{self.server_address[1]}/moved{url}"
                item = {"filename": entry.filename, "url": url,
                        "hashes": dict([self._listed_hash(entry)]), "requires-python": entry.requires_python,
                        "yanked": entry.yanked, "size": entry.size, "upload-time": entry.upload_time}
                if entry.metadata is not None:
                    item["core-metadata"] = {"sha256": hashlib.sha256(entry.metadata).hexdigest()}
                entries.append(item)
            for evil in self.faults.unsafe_listing:
                entries.append({"filename": evil, "url": "/packages/00/00/evil/x.whl",
                                "hashes": {"sha256": "0" * 64}})
            meta = {"api-version": "1.4" if status else "1.1",
                    "_last-serial": str(serial) if self.faults.proxy_serials else serial}
            document = {"meta": meta, "name": project, "files": entries}
            if status:
                document["project-status"] = {"status": status[0], **({"reason": status[1]} if status[1] else {})}
            return json.dumps(document).encode()
        anchors = []
        for entry in files:
            attrs = f'href="{entry.url_path}#{"=".join(self._listed_hash(entry))}"'
            if entry.requires_python:
                attrs += f' data-requires-python="{html.escape(entry.requires_python)}"'
            if entry.yanked:
                attrs += f' data-yanked="{html.escape(entry.yanked if isinstance(entry.yanked, str) else "")}"'
            if entry.metadata is not None:
                attrs += f' data-dist-info-metadata="sha256={hashlib.sha256(entry.metadata).hexdigest()}"'
            anchors.append(f"<a {attrs}>{html.escape(entry.filename)}</a><br/>")
        for evil in self.faults.unsafe_listing:
            anchors.append(f'<a href="/packages/00/00/evil/x.whl#sha256={"0" * 64}">{html.escape(evil)}</a>')
        head = ""
        if status:
            head = ('<head><meta name="pypi:repository-version" content="1.4">'
                    f'<meta name="pypi:project-status" content="{html.escape(status[0])}">')
            if status[1]:
                head += f'<meta name="pypi:project-status-reason" content="{html.escape(status[1])}">'
            head += "</head>"
        return ("<!DOCTYPE html><html>" + head + "<body>\n" + "\n".join(anchors) + "\n</body></html>\n").encode()

    def handle_path(self, handler: _Handler, path: str, head: bool) -> None:
        if self.faults.latency:
            threading.Event().wait(self.faults.latency)
        catalog = self.catalog
        if path in ("/simple", "/simple/"):
            with catalog.lock:
                names = sorted(catalog.projects)
                if self._wants_json(handler):
                    body = json.dumps({"meta": {"api-version": "1.1", "_last-serial": catalog.serial},
                                       "projects": [{"name": catalog.display_names[n],
                                                     "_last-serial": catalog.serials[n]} for n in names]}).encode()
                    content_type = JSON_TYPE
                else:
                    body = ("<!DOCTYPE html><html><body>\n" + "\n".join(
                        f'<a href="/simple/{n}/">{html.escape(catalog.display_names[n])}</a>' for n in names)
                        + "\n</body></html>\n").encode()
                    content_type = "text/html"
                serial = catalog.serial
            handler._send(200, body, content_type, {"X-PyPI-Last-Serial": str(serial)}, head)
            return
        if path.startswith("/simple/"):
            raw = path[len("/simple/"):].strip("/")
            normalized = canonicalize_name(raw)
            if raw != normalized:
                handler._send(301, b"", "text/plain", {"Location": f"/simple/{normalized}/"}, head)
                return
            with catalog.lock:
                files = list(catalog.projects.get(normalized, []))
                known = normalized in catalog.projects
                serial = catalog.serials.get(normalized, 0)
                status = catalog.statuses.get(normalized)
            if not known:
                handler._send(404, b"not found\n", "text/plain", head=head)
                return
            as_json = self._wants_json(handler)
            body = self._project_document(normalized, files, as_json, serial, status)
            tagged = (self._project_document(normalized, files, as_json, 0, status) if self.faults.etag_without_serial
                      else body)
            etag = '"' + hashlib.sha256(tagged).hexdigest()[:32] + '"'
            headers = {"Vary": "Accept"} if self.faults.proxy_serials else {"X-PyPI-Last-Serial": str(serial),
                                                                            "Vary": "Accept"}
            if not self.faults.no_etag:
                headers["ETag"] = etag
                if handler.headers.get("If-None-Match") == etag:
                    handler.send_response(304)
                    for key, value in headers.items():
                        handler.send_header(key, value)
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
            handler._send(200, body, JSON_TYPE if as_json else "text/html; charset=utf-8", headers, head)
            return
        if path.startswith("/packages/"):
            if path.rsplit("/", 1)[-1] in self.faults.redirect_files:
                host = self.faults.redirect_host
                where = f"http://{host}:{self.server_address[1]}/moved{path}" if host else "/moved" + path
                handler._send(302, b"", "text/plain", {"Location": where}, head)
                return
            self._serve_file(handler, path, head)
            return
        if path.startswith("/moved/packages/"):
            self._serve_file(handler, path[len("/moved"):], head)
            return
        if path.startswith("/pypi/") and path.endswith("/json"):
            self._legacy_json(handler, canonicalize_name(path[len("/pypi/"):-len("/json")]), head)
            return
        handler._send(404, b"not found\n", "text/plain", head=head)

    # -- the legacy JSON API and XML-RPC, only so that bandersnatch 6 can be benchmarked on this upstream --
    def _legacy_json(self, handler: _Handler, project: str, head: bool) -> None:
        with self.catalog.lock:
            files = list(self.catalog.projects.get(project, []))
            serial = self.catalog.serials.get(project)
        if serial is None:
            handler._send(404, b"not found\n", "text/plain", head=head)
            return
        releases: dict[str, list] = {}
        for entry in files:
            version = entry.filename.split("-")[1]
            releases.setdefault(version, []).append({
                "filename": entry.filename, "url": handler_base(handler) + entry.url_path,
                "digests": {"sha256": entry.sha256, "blake2b_256": entry.blake2b}, "size": entry.size,
                "packagetype": "bdist_wheel" if entry.filename.endswith(".whl") else "sdist",
                "upload_time_iso_8601": entry.upload_time, "upload_time": entry.upload_time[:19],
                "requires_python": entry.requires_python, "yanked": bool(entry.yanked),
                "yanked_reason": entry.yanked if isinstance(entry.yanked, str) else None,
                "python_version": "py3", "has_sig": False, "md5_digest": ""})
        latest = sorted(releases)[-1] if releases else "0"
        body = json.dumps({"info": {"name": self.catalog.display_names[project], "version": latest},
                           "last_serial": serial, "releases": releases, "urls": releases.get(latest, [])}).encode()
        handler._send(200, body, "application/json", {"X-PyPI-Last-Serial": str(serial)}, head)

    def handle_post(self, handler: _Handler, path: str, body: bytes) -> None:
        params, method = xmlrpc.client.loads(body)
        with self.catalog.lock:
            if method == "list_packages_with_serial":
                result: object = {self.catalog.display_names[n]: s for n, s in self.catalog.serials.items()}
            elif method == "changelog_since_serial":
                result = [(self.catalog.display_names[n], "", 0, "update", s)
                          for n, s in sorted(self.catalog.serials.items(), key=lambda i: i[1]) if s > params[0]]
            else:
                handler._send(400, b"", "text/plain")
                return
        payload = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True).encode()
        handler._send(200, payload, "text/xml")

    def _serve_file(self, handler: _Handler, path: str, head: bool) -> None:
        want_metadata = path.endswith(".metadata")
        lookup = path[: -len(".metadata")] if want_metadata else path
        with self.catalog.lock:
            entry = self.catalog.by_url_path.get(lookup)
        if entry is None or (want_metadata and entry.metadata is None):
            handler._send(404, b"not found\n", "text/plain", head=head)
            return
        if want_metadata:
            handler._send(200, entry.metadata, "application/octet-stream", head=head)
            return
        with self.fault_lock:
            cut = self.faults.truncate.get(entry.filename, 0) > 0
            if cut:
                self.faults.truncate[entry.filename] -= 1
            cut_silently = self.faults.cut_silently.get(entry.filename, 0) > 0
            if cut_silently:
                self.faults.cut_silently[entry.filename] -= 1
        if self.faults.delay_files:
            threading.Event().wait(self.faults.delay_files)
        wanted = _byte_range(handler.headers.get("Range"), entry.size)
        if wanted is not None and not self.faults.no_ranges and not (cut or cut_silently):
            _send_range(handler, entry.disk_path, entry.size, wanted, head)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(entry.size))
        if entry.filename in self.faults.gzip_labelled:
            handler.send_header("Content-Encoding", "gzip")
        if cut:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if head:
            return
        with open(entry.disk_path, "rb") as stream:
            stall = entry.filename in self.faults.stall_files
            if cut or cut_silently or stall:  # half the body, then (after the stall) the connection closed
                handler.wfile.write(stream.read(max(1, entry.size // 2)))
                handler.wfile.flush()
                if stall:
                    threading.Event().wait(self.faults.stall_seconds)
                handler.close_connection = True
                return
            if entry.filename in self.faults.corrupt:
                data = bytearray(stream.read())
                data[len(data) // 2] ^= 0xFF
                handler.wfile.write(bytes(data))
                return
            handler.wfile.flush()
            handler.connection.sendfile(stream)
        if self.faults.drop_after_file:
            handler.close_connection = True


def _byte_range(header: Optional[str], size: int) -> Optional[tuple[int, int]]:
    """(first, last) byte of a single-range Range header (bytes=a-b, bytes=a-, bytes=-n); None otherwise."""
    if not header or not header.startswith("bytes=") or "," in header or not size:
        return None
    first, _, last = header[len("bytes="):].partition("-")
    try:
        if not first:
            return max(0, size - int(last)), size - 1
        return int(first), min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None


def _send_range(handler: _Handler, path: str, size: int, wanted: tuple[int, int], head: bool) -> None:
    first, last = wanted
    if first > last:
        handler._send(416, b"", "application/octet-stream", {"Content-Range": f"bytes */{size}"}, head)
        return
    body = b""
    if not head:
        with open(path, "rb") as stream:
            stream.seek(first)
            body = stream.read(last - first + 1)
    handler._send(206, body, "application/octet-stream", {"Content-Range": f"bytes {first}-{last}/{size}"}, head,
                  length=last - first + 1)


def handler_base(handler: _Handler) -> str:
    """The origin the client asked for (the Host header: right behind a front server too)."""
    host, port = handler.server.server_address[:2]
    scheme = "https" if isinstance(handler.server.socket, ssl.SSLSocket) else "http"
    return f"{scheme}://{handler.headers.get('Host') or f'{host}:{port}'}"


class MirrorHTTPServer(_Server):
    """Serve a mirror's web/ directory: static files, index.v1_json when JSON is asked for."""

    def __init__(self, web_dir: str, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.web_dir = os.path.realpath(web_dir)

    def handle_path(self, handler: _Handler, path: str, head: bool) -> None:
        target = os.path.realpath(os.path.join(self.web_dir, path.lstrip("/")))
        if not (target == self.web_dir or target.startswith(self.web_dir + os.sep)):
            handler._send(404, b"", "text/plain", head=head)
            return
        content_type = "application/octet-stream"
        if os.path.isdir(target):
            if not path.endswith("/"):
                handler._send(301, b"", "text/plain", {"Location": path + "/"}, head)
                return
            if JSON_TYPE in handler.headers.get("Accept", "") and os.path.isfile(
                    os.path.join(target, "index.v1_json")):
                target, content_type = os.path.join(target, "index.v1_json"), JSON_TYPE
            else:
                target, content_type = os.path.join(target, "index.html"), "text/html; charset=utf-8"
        if not os.path.isfile(target):
            handler._send(404, b"not found\n", "text/plain", head=head)
            return
        with open(target, "rb") as stream:
            handler._send(200, stream.read(), content_type, {"Vary": "Accept"}, head)


class Running:
    """A server on 127.0.0.1 in a background thread: `with Running(server) as url: ...`."""

    def __init__(self, server: _Server, path: str = "/simple/", tls: Optional[tuple[str, str]] = None) -> None:
        self.server = server
        self.path = path
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def url(self) -> str:
        return self.base + self.path

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy for plain http: each absolute-form request is relayed to its host, once the
    Proxy-Authorization header is the one the server requires."""

    protocol_version = "HTTP/1.1"
    server: ForwardProxyServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def _relay(self) -> None:
        self.server.record(self.command, self.path, self.headers)
        if self.headers.get("Proxy-Authorization") != self.server.required_login:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="fixture proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urlsplit(self.path)
        skipped = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            connection.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                               headers={k: v for k, v in self.headers.items() if k.lower() not in skipped})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class ForwardProxyServer(_Server):
    def __init__(self, address: tuple[str, int], required_login: Optional[str]) -> None:
        super().__init__(address, _ProxyHandler)
        self.required_login = required_login


def serve_proxy(required_login: Optional[str] = None) -> Running:
    """A forward proxy on 127.0.0.1 (its URL is .base) that wants this Proxy-Authorization value."""
    return Running(ForwardProxyServer(("127.0.0.1", 0), required_login), path="/")


def serve_upstream(catalog: Catalog, port: int = 0, host: str = "127.0.0.1",
                   tls: Optional[tuple[str, str]] = None) -> Running:
    """tls: (certificate file, key file) to serve https instead of http."""
    return Running(UpstreamHTTPServer(catalog, (host, port)), tls=tls)


def serve_mirror(web_dir: str, port: int = 0, host: str = "127.0.0.1") -> Running:
    return Running(MirrorHTTPServer(web_dir, (host, port)))


def self_signed_certificate(directory: str) -> tuple[str, str]:
    """Write a certificate for 127.0.0.1, valid a day, and its key into directory: (certificate, key) paths,
    for serve_upstream(tls=...) and as the client's CA bundle."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key
