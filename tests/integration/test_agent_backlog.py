#!/usr/bin/env python3
# ctest: no postgres twin (the car and the broker: the gateway's database plays no part)
"""Offline, then back: the broker is stopped while the agent keeps sampling
(4 Hz, a batch every 2 samples), so a backlog builds up in queue.db. When the
broker is back, the agent must send the backlog (the batches it had sealed
before it reconnected) oldest first and at most backlog_max_batches_per_s
(4 here), while batches sealed after the reconnect go at once: some of those
are published before the backlog is through. The agent's debug log (a batch
is logged "sealed" after its commit and "published" when handed to MQTT)
gives the order. At the end the gateway holds every batch, seqs 1..N with no
hole, and no sample twice. The rate is checked as a lower bound only (the
drain cannot be faster than the cap allows; a slow machine only makes it
slower). The broker keeps no messages across its restart here, so batches
published before the gateway is back are resent after receipt_timeout_ms
(3 s). test_agent_frozen.py runs the same checks with a broker frozen by
SIGSTOP instead (start_offline and check_drain are shared)."""
import re
import time

from harness import VIN_A, System, wait_for

RATE = 4


def events(log_path):
    """The agent log as a list of ("sealed"|"published"|"acknowledged"|
    "stored"|"connected"|"disconnected", seq)."""
    out = []
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.search(r"batch (\d+) (sealed|published|acknowledged|stored)", line)
            if m:
                out.append((m.group(2), int(m.group(1))))
            elif "disconnected from the broker" in line:
                out.append(("disconnected", 0))
            elif "connected to the broker" in line:
                out.append(("connected", 0))
    return out


def start_offline(s, **overrides):
    """Broker, gateway and an agent sampling at 4 Hz (a batch every 2
    samples), up to its first stored batches. Returns the broker's port."""
    s.make_pki(VIN_A)
    port = s.start_broker()
    s.start_gateway()
    signals = s.write_signals("signals.csv", [(t, "%.3f" % (1000 + t * 0.02), "50.0", "72")
                                              for t in range(0, 600)])
    s.start_agent(VIN_A, signals, signals_loop="true", sample_interval_ms="250",
                  batch_max_samples="2", batch_max_age_ms="500", sample_adaptive="no",
                  backlog_max_batches_per_s=str(RATE), receipt_timeout_ms="3000",
                  **overrides)
    wait_for(lambda: s.ctl("stats")["stored"] >= 2, 30, "the first batches stored")
    return port


def check_drain(s, t_up, what):
    """After the broker is back (at t_up): the backlog drains oldest first
    at RATE a second while live batches flow, and the gateway ends with
    every batch once. Returns a summary line."""
    log = s.path("agent.log")

    def drained():
        ev = events(log)
        last_conn = max(i for i, e in enumerate(ev) if e[0] == "connected")
        after = ev[last_conn + 1:]
        pubs = [q for k, q in after if k == "published"]
        # Unsent or unconfirmed at the reconnect: the backlog. Not those the
        # resumed session delivered (a frozen broker that had read them:
        # their PUBACK comes after the reconnect, before any new publish).
        resumed, published = set(), set()
        for k, q in after:
            if k == "published":
                published.add(q)
            elif k == "acknowledged" and q not in published:
                resumed.add(q)
        backlog = {q for k, q in ev[:last_conn] if k == "sealed"} - \
            {q for k, q in ev[:last_conn] if k == "stored"} - resumed
        if not backlog or not set(pubs) >= backlog:
            return None
        return backlog, pubs
    backlog, pubs = wait_for(drained, 90, "the backlog published after the reconnect")
    t_drained = time.monotonic()

    cut = max(backlog)
    back = []  # first publish of each backlog batch, in order
    for q in pubs:
        if q in backlog and q not in back:
            back.append(q)
    live_first = [i for i, q in enumerate(pubs) if q > cut]
    assert back == sorted(back), "backlog not sent oldest first: %r" % back
    assert len(back) >= 3 * RATE, "only %d batches of backlog: %r" % (len(back), back)
    last_back = max(i for i, q in enumerate(pubs) if q in backlog)
    assert live_first and live_first[0] < last_back, \
        "no live batch was sent before the backlog was through: %r" % pubs
    # One second's burst, then at most RATE a second.
    assert t_drained - t_up >= (len(back) - RATE - 1) / RATE, \
        "%d backlog batches sent within %.1f s: faster than %d/s" % (
            len(back), t_drained - t_up, RATE)

    # A batch published before the gateway subscribed again (mosquitto
    # drops it, and still acknowledges it) is resent at its receipt
    # timeout (3 s here).
    # Wait for no hole at all: a live batch in flight when the backlog is
    # through (or one the gateway missed while it waited out a reconnect)
    # is stored at its resend; a hole that stays is a loss.
    def complete(h):
        got = {x["seq"] for x in h or []}
        return h if got >= set(back) and got == set(range(1, max(got) + 1)) else None

    final = wait_for(lambda: complete(s.try_ctl("vehicle", "history", VIN_A, "--limit", "100000")),
                     60, "the backlog at the gateway, with no hole")
    s.stop("agent")
    seqs = sorted({x["seq"] for x in final})
    assert seqs == list(range(1, seqs[-1] + 1)), "a hole in the stored seqs: %r" % seqs
    times = [x["time_ms"] for x in final]
    assert len(set(times)) == len(times), "a sample was stored twice"
    return "%s: %d batches of backlog at %d/s in %.1f s; first live batch published as #%d of %d" % (
        what, len(back), RATE, t_drained - t_up, live_first[0] + 1, len(pubs))


def test():
    with System("backlog") as s:
        port = start_offline(s)
        s.stop("broker")
        time.sleep(5)
        s.start_broker(port)
        print(check_drain(s, time.monotonic(), "broker stopped"))


if __name__ == "__main__":
    test()
