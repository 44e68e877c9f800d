-- The example database: `sqlite3 examples/sql/shop.db < examples/sql/schema.sql`.
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL, balance REAL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                     total REAL NOT NULL, placed TEXT NOT NULL);
INSERT INTO customers VALUES (1, 'Ada Lovelace', 'gold', 120.5), (2, 'Grace Hopper', 'silver', 99.0);
INSERT INTO orders VALUES (1, 1, 30.0, '2026-01-03'), (2, 1, 12.5, '2026-02-11'), (3, 2, 99.0, '2026-02-12');
