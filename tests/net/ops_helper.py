"""The paced sender and the probe of tests/e2e_ops.rs (`python3 ops_helper.py CMD ARGS...`)."""

import os, socket, sys, time

def send(host, port, path, go):
    s = socket.create_connection((host, int(port)), timeout=30)
    sent = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            s.sendall(chunk)
            sent += len(chunk)
            if not os.path.exists(go):
                time.sleep(0.03)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    print("sent %d bytes" % sent, flush=True)

def probe(host, port):
    """Exit 0 if a TCP connection to host:port opens within 3 s."""
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        print("connect: %s" % e, flush=True)
        sys.exit(1)

if __name__ == "__main__":
    {"send": send, "probe": probe}[sys.argv[1]](*sys.argv[2:])
