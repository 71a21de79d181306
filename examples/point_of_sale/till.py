"""The till of the point-of-sale example: every order is stored and published in one
transaction, through pgsluice in transaction pooling. The subscribers hear of an order
only if that transaction commits (PostgreSQL delivers NOTIFY at commit).

    python till.py "host=127.0.0.1 port=6432 dbname=app user=app password=app-secret" --orders 5
"""

import argparse
import json

import psycopg


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("dsn", help="libpq connection string of pgsluice")
    args.add_argument("--orders", type=int, default=5, help="how many orders to ring up")
    a = args.parse_args()
    with psycopg.connect(a.dsn) as conn:
        with conn.transaction():
            conn.execute(
                "CREATE TABLE IF NOT EXISTS pos_orders ("
                " id int PRIMARY KEY, table_no int NOT NULL, at timestamptz DEFAULT now())"
            )
        for order_id in range(1, a.orders + 1):
            order = {"id": order_id, "table": order_id % 12 + 1}
            with conn.transaction():
                conn.execute(
                    "INSERT INTO pos_orders (id, table_no) VALUES (%s, %s)",
                    (order["id"], order["table"]),
                )
                conn.execute("SELECT pg_notify('orders', %s)", (json.dumps(order),))
            print(f"till: order {order_id} committed", flush=True)


if __name__ == "__main__":
    main()
