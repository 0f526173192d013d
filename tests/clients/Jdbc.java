// What PostgreSQL's JDBC driver (Debian's libpostgresql-jdbc-java) sends, for
// t_clients.sh: URL, a marker prefix P and a type T; every statement carries
// an alias "AS P<kind>" that the test counts in the tracer's output, and a
// shape of its own to pg_stat_statements (another T: other statements to it).
//   a batch of 100 inserts (Bind/Execute per row, one Sync), 20 executions of
//   one query (server-side prepared from the 5th on: prepareThreshold), a
//   batch whose 3rd of 6 rows fails, and a query read 10 rows at a time, in
//   two transactions (setFetchSize: one portal, an Execute with a row limit
//   per round trip, PortalSuspended in between: one statement to the server).
// (a fixture, run with Debian's java as a single source file)
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;

public class Jdbc {
    static void check(boolean ok, String what) {
        if (!ok)
            throw new IllegalStateException(what);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], p = args[1], t = args[2];

        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TEMP TABLE jdrv (a float8)");
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdrv SELECT ?::" + t + " AS " + p + "j_batch")) {
                for (int i = 0; i < 100; i++) {
                    ps.setInt(1, i);
                    ps.addBatch();
                }
                check(ps.executeBatch().length == 100, "the batch of 100");
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::" + t + " + 1 AS " + p + "j_fetch")) {
                for (int i = 0; i < 20; i++) {
                    ps.setInt(1, i);
                    try (ResultSet r = ps.executeQuery()) {
                        check(r.next() && r.getInt(1) == i + 1, "a fetch's row");
                    }
                }
            }
            // a failing row inside a batch: two executed, the third errors, the rest skipped
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdrv SELECT 1 / ?::" + t + " AS " + p + "j_fail")) {
                for (int v : new int[] {1, 1, 0, 1, 1, 1}) {
                    ps.setInt(1, v);
                    ps.addBatch();
                }
                try {
                    ps.executeBatch();
                    check(false, "the failing batch did not fail");
                } catch (BatchUpdateException e) {
                    check("22012".equals(e.getSQLState()), "the failing batch's SQLSTATE: " + e.getSQLState());
                }
            }
            // a cursor's rows in round trips of 10 (a fetch size needs a transaction), twice: the
            // second transaction's BEGIN and first Execute come in a read the executor probes time
            c.setAutoCommit(false);
            for (int k = 0; k < 2; k++) {
                try (PreparedStatement ps = c.prepareStatement("SELECT g::" + t + " AS " + p + "j_cursor FROM generate_series(1, 100) g")) {
                    ps.setFetchSize(10);
                    int n = 0;
                    try (ResultSet r = ps.executeQuery()) {
                        while (r.next())
                            n++;
                    }
                    check(n == 100, "100 rows through the cursor");
                }
                c.commit();
            }
        }
    }
}
