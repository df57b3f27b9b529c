#!/usr/bin/env python3
"""proxy-cases.py — runs tests/e2e/proxy/*.case against `gantry proxy`.

    proxy-cases.py GANTRY CASES_DIR WORK_DIR [CASE...]

Starts a fake upstream (this process, threads) and one `gantry proxy` (its
own session; stopped at exit), then for each case: optionally installs the
case's routes (SIGHUP, waits for the generation), sends the raw client bytes,
reads the answer(s), and checks both wires. Prints one "ok"/"not ok" line per
case and exits 1 if any failed.

A .case file: "key: value" lines, then sections introduced by "--- NAME".
Section text is joined without the file's newlines and then decoded with
Python escapes, so bytes are explicit: write \\r\\n, \\x00, \\t.

  status: 400            status of the first response (or "none")
  responses: 2           number of responses expected (default: not checked)
  closed: yes|no         whether the proxy closed the connection afterwards
  upstream: none         nothing at all may reach the upstream
  half-close: yes        the client shuts down its sending side after the bytes
  --- client             raw bytes the client sends
  --- reply              what the fake upstream answers to each request
                         (default: 200, "ok", Content-Length)
  --- expect-client      one regex per line (re.search, MULTILINE) over the
  --- reject-client      bytes the client got (latin-1) / must not match
  --- expect-upstream    the same over the bytes the upstream got
  --- reject-upstream
  --- routes             a routes file; $UP is the fake upstream's address,
                         $GEN the generation to use

Bounded: every socket has timeouts; the whole run is bounded by the count of
cases times a few seconds.
"""
import json, os, re, signal, socket, subprocess, sys, threading, time, urllib.request

DEFAULT_REPLY = b"HTTP/1.1 200 OK\r\nX-Up: fake\r\nContent-Length: 2\r\n\r\nok"


class Upstream:
    """Keep-alive fake upstream: reads whole requests (CL or chunked), answers
    each with self.reply, and records every byte it received."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = bytearray()
        self.conns = 0
        self.reply = DEFAULT_REPLY
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def reset(self, reply):
        with self.lock:
            self.got = bytearray()
            self.conns = 0
            self.reply = reply

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            with self.lock:
                self.conns += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        buf = b""

        def more():
            nonlocal buf
            d = c.recv(65536)
            if not d:
                raise EOFError
            with self.lock:
                self.got += d
            buf += d

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                more()
            l, buf = buf.split(b"\r\n", 1)
            return l

        def take(n):
            nonlocal buf
            while len(buf) < n:
                more()
            d, buf = buf[:n], buf[n:]
            return d

        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    more()
                head, buf = buf.split(b"\r\n\r\n", 1)
                h = head.lower()
                m = re.search(rb"\ncontent-length: *(\d+)", h)
                if b"\ntransfer-encoding: chunked" in h:
                    while True:
                        n = int(line().split(b";")[0], 16)
                        if n == 0:
                            while line():
                                pass
                            break
                        take(n + 2)
                elif m:
                    take(int(m.group(1)))
                with self.lock:
                    reply = self.reply
                c.sendall(reply)
                if b"connection: close" in reply.lower():
                    break
        except (EOFError, OSError, ValueError):
            pass
        c.close()


def parse_case(path):
    keys, sections, cur = {}, {}, None
    for raw in open(path, encoding="utf-8").read().split("\n"):
        if raw.startswith("--- "):
            cur = raw[4:].strip()
            sections[cur] = []
        elif cur is None:
            if raw.strip() and not raw.startswith("#"):
                k, _, v = raw.partition(":")
                keys[k.strip()] = v.strip()
        else:
            sections[cur].append(raw)
    out = {}
    for name, lines in sections.items():
        if name in ("client", "reply"):
            text = "".join(lines)
            out[name] = text.encode("latin-1").decode("unicode_escape").encode("latin-1")
        elif name == "routes":
            out[name] = "\n".join(lines)
        else:
            out[name] = [l for l in lines if l.strip()]
    return keys, out


def read_responses(s, want):
    """Reads until EOF, or until `want` complete responses arrived (then
    checks briefly for an EOF), or 3 s of silence. Returns (bytes, closed)."""
    buf, closed = b"", False
    deadline = time.time() + 8
    s.settimeout(3)
    while time.time() < deadline:
        if want and count_complete(buf) >= want:
            s.settimeout(0.15)
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
    return buf, closed


def count_complete(buf):
    """Complete responses with Content-Length (or none needed) in buf."""
    n, pos = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = buf[pos:end].lower()
        m = re.search(rb"\ncontent-length: *(\d+)", head)
        body = int(m.group(1)) if m else 0
        st = re.match(rb"http/1\.[01] (\d+)", head)
        if st and (int(st.group(1)) < 200 or int(st.group(1)) in (204, 304)):
            body = 0
        if b"transfer-encoding: chunked" in head:
            z = buf.find(b"\r\n0\r\n\r\n", end)
            if z < 0:
                return n
            pos = z + 7
        else:
            if len(buf) < end + 4 + body:
                return n
            pos = end + 4 + body
        if st and 100 <= int(st.group(1)) < 200:
            continue
        n += 1


def admin_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    gantry, cases_dir, work = sys.argv[1:4]
    only = sys.argv[4:]
    up = Upstream()
    upaddr = f"127.0.0.1:{up.port}"
    routes_path = os.path.join(work, "cases-routes.json")
    default_routes = ('{"generation": $GEN, "routes": [{"hosts": ["*"], "service": "cases", '
                      '"revisions": [{"revision": "1", "weight": 100, "backends": [{"address": "$UP"}]}]}]}')
    gen = [1]

    def write_routes(text):
        tmp = routes_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text.replace("$UP", upaddr).replace("$GEN", str(gen[0])))
        os.rename(tmp, routes_path)

    write_routes(default_routes)
    pport, aport = free_port(), free_port()
    log = open(os.path.join(work, "cases-proxy.log"), "ab")
    # --no-master: one process, so that px.poll() sees a crash (a master
    # would restart the proxy and hide it)
    px = subprocess.Popen([gantry, "proxy", "--listen", f"127.0.0.1:{pport}", "--admin", f"127.0.0.1:{aport}",
                           "--routes", routes_path, "--workers", "1", "--max-body", "1Mi",
                           "--header-timeout", "3", "--no-master"],
                          stdout=log, stderr=log, start_new_session=True)

    def stop(*_):
        if px.poll() is None:
            px.terminate()
            try:
                px.wait(5)
            except subprocess.TimeoutExpired:
                px.kill()
        sys.exit(1)

    signal.signal(signal.SIGTERM, stop)
    failed, total = [], 0
    try:
        for _ in range(50):
            try:
                admin_get(aport, "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        custom = False
        for name in sorted(os.listdir(cases_dir)):
            if not name.endswith(".case") or (only and name not in only):
                continue
            total += 1
            keys, sec = parse_case(os.path.join(cases_dir, name))
            if "routes" in sec or custom:
                gen[0] += 1
                write_routes(sec.get("routes", default_routes))
                custom = "routes" in sec
                px.send_signal(signal.SIGHUP)
                for _ in range(50):
                    if json.loads(admin_get(aport, "/status"))["generation"] == gen[0]:
                        break
                    time.sleep(0.05)
            up.reset(sec.get("reply", DEFAULT_REPLY))
            time.sleep(0.02)
            s = socket.create_connection(("127.0.0.1", pport), timeout=5)
            s.sendall(sec.get("client", b""))
            if keys.get("half-close") == "yes":
                s.shutdown(socket.SHUT_WR)
            want = int(keys.get("responses", "1"))
            got, closed = read_responses(s, want)
            s.close()
            time.sleep(0.1)  # anything still in flight to the upstream
            with up.lock:
                upgot = bytes(up.got)
            why = []
            m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
            status = m.group(1).decode() if m else "none"
            if "status" in keys and status != keys["status"]:
                why.append(f"status {status}, want {keys['status']}")
            if "responses" in keys and count_complete(got) != want:
                why.append(f"{count_complete(got)} responses, want {want}")
            if "closed" in keys and closed != (keys["closed"] == "yes"):
                why.append(f"closed={closed}, want {keys['closed']}")
            if keys.get("upstream") == "none" and upgot:
                why.append(f"the upstream got {upgot[:200]!r}")
            text, uptext = got.decode("latin-1"), upgot.decode("latin-1")
            for rx in sec.get("expect-client", []):
                if not re.search(rx, text, re.M):
                    why.append(f"client bytes do not match {rx!r}")
            for rx in sec.get("reject-client", []):
                if re.search(rx, text, re.M):
                    why.append(f"client bytes match {rx!r}")
            for rx in sec.get("expect-upstream", []):
                if not re.search(rx, uptext, re.M):
                    why.append(f"upstream bytes do not match {rx!r}")
            for rx in sec.get("reject-upstream", []):
                if re.search(rx, uptext, re.M):
                    why.append(f"upstream bytes match {rx!r}")
            if px.poll() is not None:
                why.append("the proxy exited")
            if why:
                failed.append(name)
                print(f"not ok {total} - {name}: {'; '.join(why)}")
                print(f"#   client got: {got[:300]!r}")
                print(f"#   upstream got: {upgot[:300]!r}")
            else:
                print(f"ok {total} - {name} ({status})")
            if px.poll() is not None:
                break
    finally:
        if px.poll() is None:
            px.terminate()
            try:
                px.wait(5)
            except subprocess.TimeoutExpired:
                px.kill()
    print(f"# {total - len(failed)}/{total} cases passed")
    sys.exit(1 if failed or not total else 0)


if __name__ == "__main__":
    main()
