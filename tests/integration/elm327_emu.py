"""A scripted ELM327 emulator on a pseudo-terminal, for test_agent_obd.py.

Elm327(car) opens a pty (os.openpty) and answers from a thread like an
ELM327 v1.5 in front of `car`: AT commands (ATZ resets echo on, ATE0 turns
it off, ATS0/ATS1 spaces), service 01 requests from the car's PIDs with
bitmaps 0x00..0xA0 computed from what it supports, and two ECUs answering
the bitmaps (the second one only has speed), as a real multi-ECU car does.
faults: a list of (pid or None, fault) consumed in order, one per PID
request (after the bitmaps) for that PID (None: any): "searching", "nodata", "nrc" (7F 01 12), "garbage", "timeout",
"stopped", "businit" (BUS INIT: ...ERROR), "unable"; None answers normally.
unplug() closes both ends, as a USB adapter pulled out does."""
import os
import select
import threading
import tty


class Car:
    def __init__(self, speed_kmh=72, fuel_a=128, odometer_km=12345.6, has_odometer=True):
        self.speed_kmh = speed_kmh
        self.fuel_a = fuel_a                # 0x2F: A*100/255 %
        self.odometer_km = odometer_km
        self.has_odometer = has_odometer

    def pids(self):
        p = {0x0D, 0x2F, 0x05, 0x0C}
        return p | {0xA6} if self.has_odometer else p

    def value(self, pid):
        if pid == 0x0D:
            return [self.speed_kmh]
        if pid == 0x2F:
            return [self.fuel_a]
        if pid == 0xA6 and self.has_odometer:
            v = int(round(self.odometer_km * 10))
            return [v >> 24 & 255, v >> 16 & 255, v >> 8 & 255, v & 255]
        if pid in (0x05, 0x0C):
            return [0x40, 0x00][: 1 if pid == 0x05 else 2]
        return None


def bitmap(pids, base):
    """The 4 bytes of bitmap PID base for a set of supported PIDs."""
    bits = 0
    for i in range(32):
        p = base + 1 + i
        if p in pids or (i == 31 and any(q > base + 0x20 for q in pids)):
            bits |= 1 << (31 - i)
    return [bits >> 24 & 255, bits >> 16 & 255, bits >> 8 & 255, bits & 255]


class Elm327:
    def __init__(self, car, faults=None):
        self.car = car
        self.faults = list(faults or [])
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo by the line discipline before the agent opens it
        self.path = os.ttyname(self.slave)
        self.echo, self.spaces = True, True
        self.requests = []      # every command received, in order
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _fmt(self, b):
        return (" " if self.spaces else "").join("%02X" % x for x in b)

    def _answer(self, cmd):
        c = cmd.replace(" ", "").upper()
        if c == "ATZ":
            self.echo, self.spaces = True, True
            return "\r\rELM327 v1.5"
        if c.startswith("AT"):
            if c == "ATE0":
                self.echo = False
            elif c in ("ATS0", "ATS1"):
                self.spaces = c == "ATS1"
            return "OK"
        if len(c) != 4 or not c.startswith("01"):
            return "?"
        pid = int(c[2:], 16)
        if pid % 0x20 == 0:
            if pid > 0xA0 or (pid and not any(q > pid for q in self.car.pids())):
                return "NO DATA"
            lines = [self._fmt([0x41, pid] + bitmap(self.car.pids(), pid))]
            if pid == 0:
                lines.append(self._fmt([0x41, 0x00] + bitmap({0x0D}, 0)))  # a second ECU
            return "\r".join(lines)
        fault = None
        if self.faults and self.faults[0][0] in (None, pid):
            fault = self.faults.pop(0)[1]
        data = self.car.value(pid) if pid in self.car.pids() else None
        ok = "NO DATA" if data is None else self._fmt([0x41, pid] + data)
        return {
            None: ok,
            "searching": "SEARCHING...\r" + ok,
            "nodata": "NO DATA",
            "nrc": "7F 01 12",
            "garbage": "\x00\xff#%&GARB@GE\x7f",
            "timeout": None,
            "stopped": "STOPPED",
            "businit": "BUS INIT: ...ERROR",
            "unable": "UNABLE TO CONNECT",
        }[fault]

    def _run(self):
        buf = b""
        while not self.stop:
            try:
                if not select.select([self.master], [], [], 0.05)[0] or self.stop:
                    continue
                chunk = os.read(self.master, 256)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r" in buf:
                line, buf = buf.split(b"\r", 1)
                cmd = line.decode("ascii", "replace").strip()
                if not cmd:
                    continue
                self.requests.append(cmd)
                out = self._answer(cmd)
                if out is None:
                    continue  # a timeout: no answer, no prompt
                text = (cmd + "\r" if self.echo else "") + out + "\r\r>"
                try:
                    os.write(self.master, text.encode("latin-1"))
                except OSError:
                    return

    def unplug(self):
        self.stop = True
        self.thread.join()
        for fd in (self.slave, self.master):
            try:
                os.close(fd)
            except OSError:
                pass
