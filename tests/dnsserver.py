"""A tiny DNS server on loopback for the tests: answers A queries from a
table with a given TTL, AAAA with no data, anything else NXDOMAIN, and
counts the queries it saw.  Runs in a thread of the test process."""

import socket
import struct
import threading


class DNSServer:
    def __init__(self, records, ttl=1):
        """records: {"name.": ["127.0.0.1", ...]} (lower-case names); a name
        whose value is None is never answered (a nameserver that hangs)."""
        self.records = records
        self.ttl = ttl
        self.queries = []          # (name, qtype) in arrival order
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def count(self, name, qtype=1):
        return sum(1 for n, t in self.queries if n == name and t == qtype)

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, data):
        if len(data) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", data[:6])
        labels, i = [], 12
        while i < len(data) and data[i] != 0:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode(errors="replace").lower())
            i += 1 + n
        question = data[12:i + 5]
        qtype, = struct.unpack("!H", data[i + 1:i + 3])
        name = ".".join(labels) + "."
        self.queries.append((name, qtype))
        rd = flags & 0x0100
        if name in self.records and self.records[name] is None:
            return None
        if name not in self.records:
            return struct.pack("!HHHHHH", qid, 0x8183 | rd, 1, 0, 0, 0) + question
        answers = b""
        count = 0
        if qtype == 1:
            for addr in self.records[name]:
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, self.ttl, 4)
                answers += socket.inet_aton(addr)
                count += 1
        return struct.pack("!HHHHHH", qid, 0x8180 | rd, 1, count, 0, 0) + question + answers
