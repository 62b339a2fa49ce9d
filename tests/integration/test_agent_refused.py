#!/usr/bin/env python3
# ctest: no postgres twin (the car and the broker: the gateway's database plays no part)
"""A publish the broker refuses with reason 135 (Not authorized) is logged
as such, at warn, once (issue 9 item 6). Our agent only publishes to its own
VIN's topics (it refuses a certificate that is not its VIN's at start), so
the 135 here comes from the broker plugin's other refusal, the per-car
publish budget, set to one message a second with a burst of one: the
agent's ONLINE status takes the burst, its first telemetry batch is
refused. The uplink's own line about the batch is debug, so the refusal is
one warning, not one per batch. (A repeat of the same cause goes to debug,
as for connect failures; the uplink retries only after a minute, too long
for this test to wait.)"""
from harness import VIN_A, System, run, wait_for

LINE = ("bus: the broker refused: not authorized (ACL): the certificate's VIN does not "
        "own this topic, or the car is over its publish budget")


def test():
    with System("refused") as s:
        s.make_pki(VIN_A)
        s.start_broker(plugin_opts={"vehicle_msgs_per_s": "1", "vehicle_msgs_burst": "1"})
        signals = s.write_signals("signals.csv", [(t, "1000.000", "50.0", "0") for t in range(4)])
        agent = s.start_agent(VIN_A, signals, batch_max_samples="1", batch_max_age_ms="1000")
        wait_for(lambda: LINE in agent.text(), 30, "the refusal to be logged")
        wait_for(lambda: "refused by broker: reason 135" in agent.text(), 10,
                 "the uplink's line about the batch")
        lines = agent.text().splitlines()
        warned = [l for l in lines if LINE in l]
        assert len(warned) == 1 and " warn: " in warned[0], warned
        uplink = [l for l in lines if "refused by broker: reason 135" in l]
        assert all(" debug: " in l for l in uplink), uplink


if __name__ == "__main__":
    run(test)
