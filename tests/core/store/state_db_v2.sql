-- A state DB at schema version 2 as tradingd wrote it before core/store.py became a package (commit 667cc1e):
-- one write of each kind, dumped with sqlite3 iterdump. tests/core/store/test_schema.py opens it with the current code.
BEGIN TRANSACTION;
CREATE TABLE equity_marks (
            session TEXT PRIMARY KEY,
            start_equity TEXT NOT NULL,
            last_equity TEXT NOT NULL,
            peak_equity TEXT NOT NULL,
            write_seq INTEGER NOT NULL
        );
INSERT INTO "equity_marks" VALUES('2018-02-02','100000.00','100000.00','100000.00',1);
INSERT INTO "equity_marks" VALUES('2018-02-05','101250.50','100990.10','101250.50',3);
CREATE TABLE fills (
            execution_id TEXT PRIMARY KEY,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            qty TEXT NOT NULL,
            price TEXT NOT NULL,
            ts TEXT NOT NULL
        );
INSERT INTO "fills" VALUES('x-1','td-zscore-AAPL-buy-1','AAPL','buy','9.402031','159.54','2018-02-05T21:00:01.000000+00:00');
CREATE TABLE flags (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "flags" VALUES('halted','manual');
INSERT INTO "flags" VALUES('last_scan_date','2018-02-05');
CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,
            msg_id INTEGER NOT NULL,
            type TEXT NOT NULL,
            ts_event TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            payload TEXT NOT NULL
        );
INSERT INTO "journal" VALUES(1,1,'SignalGenerated','2018-02-05T21:00:00.000000+00:00','c-AAPL','{"ts_init":"2018-02-05T21:00:00+00:00","strategy":"zscore","symbol":"AAPL","side":"buy","is_exit":false,"price":"159.54","score":-2.4,"volatility":0.012,"bar_ts":"2018-02-05T14:30:00+00:00","reason":"zscore<-2"}');
INSERT INTO "journal" VALUES(2,2,'OrderFilled','2018-02-05T21:00:00.000000+00:00','c-AAPL','{"ts_init":"2018-02-05T21:00:00+00:00","fill":{"execution_id":"x-1","client_order_id":"td-zscore-AAPL-buy-1","symbol":"AAPL","side":"buy","qty":"9.402031","price":"159.54","ts":"2018-02-05T21:00:01+00:00"}}');
CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY,
            broker_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            status TEXT NOT NULL,
            qty TEXT,
            notional TEXT,
            filled_qty TEXT NOT NULL,
            filled_avg_price TEXT,
            submitted_at TEXT,
            updated_at TEXT,
            reason TEXT NOT NULL,
            strategy TEXT NOT NULL,
            tier TEXT,
            signal_bar_ts TEXT
        );
INSERT INTO "orders" VALUES('td-zscore-AAPL-buy-1','b-1','AAPL','buy','filled',NULL,'1500.00','9.402031','159.54','2018-02-05T21:00:00.000000+00:00','2018-02-05T21:00:02.000000+00:00','','zscore','TIER3','2018-02-05T14:30:00.000000+00:00');
INSERT INTO "orders" VALUES('td-zscore-MSFT-sell-2','','MSFT','sell','pending_submit','3',NULL,'0',NULL,NULL,NULL,'','zscore',NULL,NULL);
CREATE TABLE positions (
            symbol TEXT PRIMARY KEY,
            qty TEXT NOT NULL,
            avg_entry_price TEXT NOT NULL,
            market_price TEXT NOT NULL
        );
INSERT INTO "positions" VALUES('AAPL','9.402031','159.54','160.01');
CREATE INDEX orders_status ON orders (status);
CREATE INDEX fills_ts ON fills (ts);
CREATE INDEX equity_marks_write_seq ON equity_marks (write_seq);
COMMIT;
PRAGMA user_version = 2;
