"""A service of the point-of-sale example that reacts to orders: it LISTENs on `orders`
through pgsluice in transaction pooling, and holds no server connection while it waits.

    python subscriber.py "host=127.0.0.1 port=6432 dbname=app user=app password=app-secret" \
        --name engagement
    python subscriber.py "..." --name stock --busy

Without --busy it waits in psycopg's notifies() loop (notifications arrive while it is idle).
With --busy it runs a transaction of its own every 10 ms, as a stock service updating
its counts would, and a notify handler gets the orders as psycopg reads them.
"""

import argparse
import json
import time

import psycopg


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("dsn", help="libpq connection string of pgsluice")
    args.add_argument("--name", default="engagement", help="service name to print")
    args.add_argument("--count", type=int, default=0, help="exit after this many orders")
    args.add_argument("--busy", action="store_true", help="run transactions meanwhile")
    a = args.parse_args()
    seen = 0

    def on_order(n: psycopg.Notify) -> None:
        nonlocal seen
        order = json.loads(n.payload)
        seen += 1
        print(f"{a.name}: order {order['id']} for table {order['table']}", flush=True)

    with psycopg.connect(a.dsn, autocommit=True) as conn:
        conn.execute("LISTEN orders")
        print(f"{a.name}: listening", flush=True)
        if a.busy:
            conn.add_notify_handler(on_order)
            while not a.count or seen < a.count:
                with conn.transaction():
                    conn.execute("SELECT count(*) FROM pg_catalog.pg_class")
                time.sleep(0.01)
        else:
            for n in conn.notifies():
                on_order(n)
                if a.count and seen >= a.count:
                    break


if __name__ == "__main__":
    main()
