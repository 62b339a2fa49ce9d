#!/usr/bin/env python3
"""(b) A vehicle holding the certificate for VIN A cannot publish as VIN B:
the broker refuses with MQTT v5 reason code 135, the agent says so, nothing
is stored for B, and the data stays in the agent's queue (nothing lost)."""
import sqlite3
import time

from harness import VIN_A, VIN_B, System, run, wait_for


def test():
    with System("acl") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway()
        signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
        # Control: a correctly configured car B would be stored; this one is
        # configured as B but holds A's certificate.
        agent = s.start_agent(VIN_B, signals, cert_vin=VIN_A, batch_max_samples="2",
                              batch_max_age_ms="2000")

        wait_for(lambda: "reason 135 (Not authorized)" in agent.text(), 30,
                 "the agent to report reason code 135")

        # Let more refused batches come and go; none may reach the gateway.
        time.sleep(3)
        assert s.ctl("stats")["received"] == 0, s.ctl("stats")
        r = s.ctl("vehicle", "show", VIN_B, check=False)
        assert not isinstance(r, dict), "gateway has state for %s: %r" % (VIN_B, r)
        assert s.try_ctl("vehicle", "history", VIN_B) in (None, []), "history stored for B"
        stats = s.ctl("stats")
        assert stats["stored"] == 0 and stats["samples_stored"] == 0, stats

        # Nothing lost: the refused batches are still queued on the car.
        s.stop("agent")
        db = sqlite3.connect(s.path("agent-state", "queue.db"))
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        queued = 0
        for t in tables:
            if "batch" in t:
                queued += db.execute("select count(*) from %s" % t).fetchone()[0]
        db.close()
        assert queued >= 1, "refused batches were dropped from the agent's queue (tables %r)" % tables


if __name__ == "__main__":
    run(test)
