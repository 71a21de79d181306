"""asyncpg through pgsluice in transaction pooling: add_listener (LISTEN), then named
prepared statements and transactions while notifications arrive, remove_listener (UNLISTEN).
Prints each payload as it arrives, then "done". Arguments: dsn, channel, count, ready file.
The test that runs it (tests/notify/example.rs) sends the notifications once the ready
file exists."""

import asyncio
import pathlib
import sys


async def main() -> None:
    import asyncpg

    dsn, channel, count, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    # statement_cache_size > 0: asyncpg prepares named statements, as it does by default.
    conn = await asyncpg.connect(dsn)
    got: list[str] = []
    all_in = asyncio.Event()

    def on_notify(_conn, _pid, chan, payload):
        assert chan == channel, chan
        got.append(payload)
        print(payload, flush=True)
        if len(got) == count:
            all_in.set()

    await conn.add_listener(channel, on_notify)
    pathlib.Path(ready).write_text("ready")
    # Keep the connection busy meanwhile: prepared statements and transactions of its own.
    i = 0
    while not all_in.is_set():
        async with conn.transaction():
            assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
        i += 1
        await asyncio.sleep(0.005)
    await conn.remove_listener(channel, on_notify)
    listening = await conn.fetchval("SELECT count(*) FROM pg_listening_channels()")
    print(f"done after {i} transactions, listening on {listening}", flush=True)
    await conn.close()


asyncio.run(main())
