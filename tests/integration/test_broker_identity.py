#!/usr/bin/env python3
# ctest: no postgres twin (the car and the broker: the gateway's database plays no part)
"""The car checks who it talks to: a broker whose certificate does not name
the address the car dials (here a broker on 127.0.0.2 holding the fleet's
certificate for localhost/127.0.0.1) is refused during the TLS handshake, and
the car says why ("certificate verify failed: IP address mismatch"); the same car connects to 127.0.0.1 (the control)."""
import time

from harness import VIN_A, System, run, wait_for


def test():
    with System("identity") as s:
        s.make_pki(VIN_A)
        port = s.start_broker(bind="127.0.0.2")
        s.start_gpsfake()
        signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
        agent = s.start_agent(VIN_A, signals, broker_uri="ssl://127.0.0.2:%d" % port)
        wait_for(lambda: "certificate verify failed: IP address mismatch" in agent.text(), 20,
                 "the car to refuse the broker's certificate, saying why")
        time.sleep(2)
        assert "bus: connected" not in agent.text(), agent.text()
        s.stop("agent")
        s.stop("broker")

        s.start_broker(port)  # 127.0.0.1: in the certificate
        control = s.start_agent(VIN_A, signals, name="control")
        wait_for(lambda: "bus: connected" in control.text(), 20, "the control to connect")


if __name__ == "__main__":
    run(test)
