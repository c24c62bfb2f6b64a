"""The short-connection load of scripts/bench.sh: `server PORTS`, `park HOST PORT N`, and the
clients (see bench.sh's write_conns_py for how they are run). Standard library only."""
import asyncio, sys, time

if sys.argv[1] == "server":
    async def handle(r, w):
        try:
            await r.readline()
            w.write(b"OK\n")
            await w.drain()
            await r.read(1)  # the client closes first: TIME-WAIT stays on the client's side
        except Exception:
            pass
        finally:
            w.close()

    async def serve():
        for p in sys.argv[2].split(","):
            await asyncio.start_server(handle, "0.0.0.0", int(p), backlog=4096, reuse_address=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
elif sys.argv[1] == "park":
    # N connections parked at the box's login prompt (auth line): each holds a client leg in
    # the participating stack until this process is killed. Opened 200 at a time (the box
    # admits 256 pending handshakes).
    import resource
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    try:
        # Root may raise the hard limit (up to fs.nr_open).
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
    held = []

    async def one():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            await asyncio.wait_for(r.readuntil(b"Username: "), 10)
            held.append(w)
        except Exception:
            pass

    async def main():
        for i in range(0, n, 200):
            await asyncio.gather(*[one() for _ in range(min(200, n - i))])
        print("parked", len(held), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
else:
    host, port, secs, conc = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    count = [0, 0]

    async def client(deadline):
        while time.monotonic() < deadline:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
                w.write(b"hello\n")
                await w.drain()
                line = await asyncio.wait_for(r.readline(), 3)
                w.close()
                count[0 if line == b"OK\n" else 1] += 1
            except Exception:
                count[1] += 1

    async def main():
        t0 = time.monotonic()
        await asyncio.gather(*[client(t0 + secs) for _ in range(conc)])
        print(count[0], count[1], "%.3f" % (time.monotonic() - t0))

    asyncio.run(main())
