#!/usr/bin/env python3
"""A lossy middlebox for the tests: a TCP proxy that, when told, drops bytes in flight and then resets
every connection it carries, as a stateful firewall or NAT does when it loses its state.

    lossy_proxy.py LISTEN_PORT TARGET_PORT      (both on 127.0.0.1)

Commands, one per line on stdin:

    drop up|down SECONDS   drop every byte going up (client -> target) or down from now on; SECONDS after
                           the first dropped byte, reset (RST) every connection and forward again
    blackhole SECONDS      drop every byte both ways for SECONDS from now, then reset every connection
    quit

Events go to stdout, one per line: "ready PORT", "armed ...", "first byte dropped", "reset N connection(s),
M byte(s) dropped". New connections are accepted all along, as a middlebox that lost its state accepts them.
"""
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
connections = []  # [client socket, target socket, reset?]
mode = None  # None, ("drop", direction, seconds) or ("blackhole", None, seconds)
armed_at = None
first_drop = None
dropped = 0


def say(line):
    with lock:
        print(line, flush=True)


def dropping(direction):
    """Whether bytes going `direction` are dropped now; counts the first drop (call under the lock)."""
    if mode is None:
        return False
    kind, which, _ = mode
    return kind == "blackhole" or which == direction


def pump(pair, src, dst, direction):
    global first_drop, dropped
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            break
        if not data:
            break
        with lock:
            if dropping(direction):
                dropped += len(data)
                if first_drop is None:
                    first_drop = time.monotonic()
                    print("first byte dropped", flush=True)
                continue
        try:
            dst.sendall(data)
        except OSError:
            break
    with lock:
        if pair[2]:
            return  # reset: the RST is on its way; a FIN must not go before it
        if pair in connections:
            connections.remove(pair)
    for s in (src, dst):  # one side closed: close the other, as a middlebox does
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def reset_all():
    """RST every connection both ways (SO_LINGER 0), dropping whatever the kernel still held."""
    global connections, mode, armed_at, first_drop, dropped
    with lock:
        doomed, connections = connections, []
        count = len(doomed)
        for pair in doomed:
            pair[2] = True
        # Linger 0 makes the close an abortive one (RST, whatever the kernel still held is dropped). The pumps
        # blocked in recv() are woken first (SHUT_RD sends nothing): a socket closed under a blocked recv()
        # would live on, unreset, until that recv() returned.
        for pair in doomed:
            for s in pair[:2]:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
    time.sleep(0.05)  # the pumps leave recv() and see the reset flag
    with lock:
        for pair in doomed:
            for s in pair[:2]:
                try:
                    s.close()
                except OSError:
                    pass
        print(f"reset {count} connection(s), {dropped} byte(s) dropped", flush=True)
        mode, armed_at, first_drop, dropped = None, None, None, 0


def timer():
    while True:
        time.sleep(0.02)
        with lock:
            if mode is None:
                continue
            kind, _, seconds = mode
            start = armed_at if kind == "blackhole" else first_drop
            due = start is not None and time.monotonic() - start >= seconds
        if due:
            reset_all()


def accept(listener, target):
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = [client, upstream, False]
        with lock:
            connections.append(pair)
        threading.Thread(target=pump, args=(pair, client, upstream, "up"), daemon=True).start()
        threading.Thread(target=pump, args=(pair, upstream, client, "down"), daemon=True).start()


def main():
    global mode, armed_at
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen))
    listener.listen(64)
    threading.Thread(target=accept, args=(listener, target), daemon=True).start()
    threading.Thread(target=timer, daemon=True).start()
    say(f"ready {listener.getsockname()[1]}")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        with lock:
            if words[0] == "drop" and words[1] in ("up", "down"):
                mode = ("drop", words[1], float(words[2]))
            elif words[0] == "blackhole":
                mode = ("blackhole", None, float(words[1]))
            else:
                print(f"unknown command: {line.strip()}", flush=True)
                continue
            armed_at = time.monotonic()
            print(f"armed {line.strip()}", flush=True)


if __name__ == "__main__":
    main()
