"""A Unix-socket proxy in front of the Docker engine that goes away in the middle of a request,
as an engine does when it stops.

Every connection is relayed to the engine's socket untouched until a request line (say
`POST /build` or `POST /v1.41/images/.../push`) matches the pattern. AFTER seconds later, every
open connection is cut and the proxy's socket removed, so later calls find no engine; the request
line that armed it is written to the CUT_FILE, so a test can tell the cut really happened.

Usage: python engine_cut.py LISTEN_SOCKET PATTERN AFTER CUT_FILE [ENGINE_SOCKET]
Prints "ready" when it listens.
"""

import asyncio
import os
import re
import sys


async def main():
    listen, pattern, after, cut_file = sys.argv[1], re.compile(sys.argv[2].encode()), float(sys.argv[3]), sys.argv[4]
    engine = sys.argv[5] if len(sys.argv) > 5 else "/var/run/docker.sock"
    writers = []
    armed = asyncio.Event()

    async def pump(reader, writer, watch):
        try:
            while data := await reader.read(65536):
                if watch and not armed.is_set():
                    for line in data.split(b"\r\n"):
                        if pattern.search(line) and b" HTTP/1." in line:
                            with open(cut_file, "wb") as f:
                                f.write(line + b"\n")
                            armed.set()
                            break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def relay(client_reader, client_writer):
        engine_reader, engine_writer = await asyncio.open_unix_connection(engine)
        writers.extend([client_writer, engine_writer])
        await asyncio.gather(
            pump(client_reader, engine_writer, True),
            pump(engine_reader, client_writer, False),
        )

    if os.path.exists(listen):
        os.unlink(listen)
    server = await asyncio.start_unix_server(relay, path=listen)
    print("ready", flush=True)
    await armed.wait()
    await asyncio.sleep(after)
    server.close()
    os.unlink(listen)
    for w in writers:
        transport = w.transport
        if transport is not None:
            transport.abort()
    # Gone at once, as a stopped engine is: no orderly shutdown of the relays in flight.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
