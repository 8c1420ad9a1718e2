"""The sandbox's engine behind TLS, as `dockerd --tlsverify` serves it: a TCP socket that takes
only clients whose certificate the given CA issued (Docker's "Protect the Docker daemon socket":
https://docs.docker.com/engine/security/protect-access/, `--tlsverify --tlscacert --tlscert
--tlskey`), and passes their bytes to the engine's unix socket unchanged, upgrades (attach, exec)
included. The engine keeps running as it was started; this only adds the protected way in.

    python tls_engine.py --port 5559 --cert server.pem --key server-key.pem --ca ca.pem \
        --socket /var/run/docker.sock
"""

import argparse
import asyncio
import ssl


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--socket", default="/var/run/docker.sock")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # dockerd's floor (crypto/tls defaults)
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.ca)
    context.verify_mode = ssl.CERT_REQUIRED  # --tlsverify: a client certificate from the CA, or no connection

    async def serve(client_reader, client_writer):
        try:
            engine_reader, engine_writer = await asyncio.open_unix_connection(args.socket)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, engine_writer), pipe(engine_reader, client_writer))

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", args.port, ssl=context)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
