"""A minimal MQTT v5 client over TLS for the broker tests: the attacker's
tool. It speaks just enough of the protocol to see what the broker answers
(CONNACK, SUBACK and PUBACK reason codes) and to publish as fast as a socket
allows, which neither mosquitto_pub nor mosquitto_sub report exactly.

Only QoS 0 and 1; no keepalive pings (tests are shorter than the 60 s
keepalive); PUBLISH packets the broker sends are kept in `received`.
Never talks to anything but 127.0.0.1.
"""
import socket
import ssl
import struct

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, DISCONNECT = 8, 9, 14
NOT_AUTHORIZED = 135


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


class Refused(Exception):
    """The broker refused the connection (CONNACK reason) or closed it."""


class Client:
    def __init__(self, port, ca, cert, key, client_id="", clean=True, session_expiry=0,
                 timeout=10.0):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, OSError) as e:
            raw.close()
            raise Refused("TLS handshake: %s" % e) from e
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        self.received = []  # (topic, payload) of PUBLISH packets from the broker
        props = b""
        if session_expiry:
            props = b"\x11" + struct.pack("!I", session_expiry)
        var = _str("MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack("!H", 60)
        var += _varint(len(props)) + props
        try:
            self._send(CONNECT << 4, var + _str(client_id))
            kind, _, body = self.read()
        except (OSError, Refused) as e:
            self.close()
            raise Refused("no CONNACK: %s" % e) from e
        if kind != CONNACK or body[1] != 0:
            self.close()
            raise Refused("CONNACK reason %d" % (body[1] if len(body) > 1 else -1))
        self.session_present = bool(body[0] & 1)
        self.assigned_id = None
        plen, off = self._get_varint(body, 2)
        props = body[off:off + plen]
        i = 0
        while i < len(props):  # assigned client identifier (0x12), if any
            pid = props[i]
            i += 1
            if pid == 0x12:
                n = struct.unpack("!H", props[i:i + 2])[0]
                self.assigned_id = props[i + 2:i + 2 + n].decode()
                break
            break  # other properties are not needed here

    # --- wire ----------------------------------------------------------
    def _send(self, first, body):
        self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    @staticmethod
    def _get_varint(b, off):
        n, mult = 0, 1
        while True:
            c = b[off]
            off += 1
            n += (c & 0x7F) * mult
            mult *= 128
            if not c & 0x80:
                return n, off

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Refused("connection closed by the broker")
            self.buf += chunk

    def read(self):
        """The next packet as (type, flags, body); PUBLISHes are answered and
        kept in received, then the next packet is read."""
        while True:
            self._fill(2)
            i, n, mult = 1, 0, 1
            while True:
                self._fill(i + 1)
                c = self.buf[i]
                i += 1
                n += (c & 0x7F) * mult
                mult *= 128
                if not c & 0x80:
                    break
            self._fill(i + n)
            first, body = self.buf[0], self.buf[i:i + n]
            self.buf = self.buf[i + n:]
            kind, flags = first >> 4, first & 0x0F
            if kind != PUBLISH:
                return kind, flags, body
            self._on_publish(flags, body)

    def _on_publish(self, flags, body):
        tlen = struct.unpack("!H", body[:2])[0]
        topic = body[2:2 + tlen].decode()
        off = 2 + tlen
        qos = (flags >> 1) & 3
        pid = None
        if qos:
            pid = body[off:off + 2]
            off += 2
        plen, off = self._get_varint(body, off)
        self.received.append((topic, body[off + plen:]))
        if qos == 1:
            self._send(PUBACK << 4, pid)

    # --- operations ----------------------------------------------------
    def _pid(self):
        pid = self.next_id
        self.next_id = pid % 65535 + 1
        return pid

    def subscribe(self, *filters, qos=1):
        """Subscribes to each filter; returns the SUBACK's reason codes, one
        per filter (0..2 granted QoS, 135 not authorized, ...)."""
        pid = self._pid()
        payload = b"".join(_str(f) + bytes([qos]) for f in filters)
        self._send((SUBSCRIBE << 4) | 2, struct.pack("!H", pid) + b"\x00" + payload)
        while True:
            kind, _, body = self.read()
            if kind == SUBACK and struct.unpack("!H", body[:2])[0] == pid:
                plen, off = self._get_varint(body, 2)
                return list(body[off + plen:])

    def publish(self, topic, payload, qos=1, retain=False, wait=True):
        """Publishes; with QoS 1 and wait, returns the PUBACK's reason code
        (0 = accepted). Without wait returns the packet id (or None)."""
        pid = self._pid() if qos else None
        var = _str(topic) + (struct.pack("!H", pid) if qos else b"") + b"\x00"
        self._send((PUBLISH << 4) | (qos << 1) | (1 if retain else 0), var + payload)
        if not qos or not wait:
            return pid
        while True:
            kind, _, body = self.read()
            if kind == PUBACK and struct.unpack("!H", body[:2])[0] == pid:
                return body[2] if len(body) > 2 else 0

    def pubacks(self):
        """Reads one PUBACK (for publish(wait=False)); returns (pid, reason)."""
        while True:
            kind, _, body = self.read()
            if kind == PUBACK:
                return struct.unpack("!H", body[:2])[0], (body[2] if len(body) > 2 else 0)

    def alive(self, timeout=0.5):
        """True if the broker has not closed the connection (reads what is
        pending, waits up to timeout for a close)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self.read()
        except socket.timeout:
            return True
        except (Refused, OSError):
            return False
        finally:
            self.sock.settimeout(10.0)

    def close(self):
        try:
            self._send(DISCONNECT << 4, b"")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
