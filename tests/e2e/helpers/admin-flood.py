#!/usr/bin/env python3
"""admin-flood.py — abuse a listener the way t0208 needs.

    admin-flood.py slowloris PORT SECONDS
        one connection sending a request head one byte a second; prints
        "connected", then "closed after N.N s" when the server closes it, or "open" after SECONDS
    admin-flood.py idle PORT N SECONDS
        opens N connections that send nothing; prints "refused R" (closed by
        the server soon after connecting: counted until N - 64 are, or for at
        most 5 s), then "extra refused" or "extra held" (one more connection,
        opened at once, while the others are held), then waits up to SECONDS
        for the others to be closed and prints "held H closed_later C"
"""
import select, socket, sys, time


def closed(s):
    """True if the peer closed (EOF or reset); never blocks."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(4096) == b""
    except OSError:
        return True


def slowloris(port, seconds):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    print("connected", flush=True)
    head = b"GET /status HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 1000
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        try:
            s.send(head[i % len(head):i % len(head) + 1])
        except OSError:
            break
        i += 1
        end = time.monotonic() + 1
        while time.monotonic() < end:
            if closed(s):
                print("closed after %.1f s" % (time.monotonic() - t0))
                return
            time.sleep(0.05)
    print("open")


def idle(port, n, seconds):
    socks, failed = [], 0
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:  # reset before connect() returned: refused too
            failed += 1
    refused = []
    end = time.monotonic() + 5
    while True:
        refused += [s for s in socks if s not in refused and closed(s)]
        if len(refused) + failed >= n - 64 or time.monotonic() > end:
            break
        time.sleep(0.05)
    held = [s for s in socks if s not in refused]
    print("refused %d" % (len(refused) + failed), flush=True)
    try:
        x = socket.create_connection(("127.0.0.1", port), timeout=5)
        end = time.monotonic() + 5
        while not closed(x) and time.monotonic() < end:
            time.sleep(0.02)
        print("extra", "refused" if closed(x) else "held", flush=True)
        x.close()
    except OSError:
        print("extra refused", flush=True)
    t0 = time.monotonic()
    later = set()
    while time.monotonic() - t0 < seconds and len(later) < len(held):
        for s in held:
            if s not in later and closed(s):
                later.add(s)
        time.sleep(0.1)
    print("held %d closed_later %d" % (len(held), len(later)))


if __name__ == "__main__":
    if sys.argv[1] == "slowloris":
        slowloris(int(sys.argv[2]), float(sys.argv[3]))
    else:
        idle(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
