"""-v: the debug log tells a batch's life, each line prefixed with what it
is about: "b17: ..." for the batch, "b17[3]: ..." for its item 3, and
"127.0.0.1:8080 c5: ..." for an upstream connection."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def wait_for(fd, pattern, timeout=5):
    """The log once pattern shows up in it (the answer can reach the
    client a moment before the last lines reach the file)."""
    deadline = time.time() + timeout
    while True:
        log = fd.read_log()
        if re.search(pattern, log, re.M) or time.time() > deadline:
            return log
        time.sleep(0.02)


class DebugLog(harness.TestCase):
    FANOUTD_ARGS = {"args": ["-v"]}

    def transitions(self, log, bid, index):
        """The (from, to) state changes of item index of batch bid, in order."""
        pat = r"^fanoutd: debug: b%s\[%d\]: (\w+) -> (\w+)\b" % (bid, index)
        return re.findall(pat, log, re.M)

    def check_life(self, steps, outcome, log):
        states = [steps[0][0]] + [to for _, to in steps]
        self.assertEqual(states[:2], ["idle", "queued"], log)
        self.assertEqual(states[-1], "done", log)
        for (_, to), (frm, _) in zip(steps, steps[1:]):
            self.assertEqual(to, frm, "states out of order: %s" % states)
        for s in ("resolving", "connecting", "exchanging"):
            self.assertIn(s, states, log)
        self.assertLess(states.index("queued"), states.index("resolving"))
        self.assertLess(states.index("resolving"), states.index("connecting"))
        self.assertLess(states.index("connecting"), states.index("exchanging"))
        self.assertEqual(states.count("done"), 1, log)
        self.assertRegex(log, r"-> done: %s\b" % outcome)

    def test_one_batch_from_accepted_to_answered(self):
        ok_url = self.up.url("/json")
        bad_url = self.up.url("/status/500?delay=100")
        status, ans = self.fd.batch([ok_url, bad_url])
        self.assertEqual(status, 502, ans)
        log = wait_for(self.fd, r"^fanoutd: debug: b\d+: answered 502")
        m = re.search(r"^fanoutd: debug: b(\d+): accepted: 2 requests, mode all$", log, re.M)
        self.assertIsNotNone(m, log)
        bid = m.group(1)
        mine = [line for line in log.splitlines()
                if re.match(r"fanoutd: debug: b%s[:\[]" % bid, line)]
        self.assertRegex(mine[0], r"accepted")
        self.assertRegex(mine[-1], r"^fanoutd: debug: b%s: answered 502 after [\d.]+ ms$" % bid)

        self.assertIn("fanoutd: debug: b%s[0]: GET %s" % (bid, ok_url), log)
        self.assertIn("fanoutd: debug: b%s[1]: GET %s" % (bid, bad_url), log)
        ok_life = self.transitions(log, bid, 0)
        bad_life = self.transitions(log, bid, 1)
        self.check_life(ok_life, "ok, status 200", log)
        self.check_life(bad_life, "http_status, status 500", log)
        self.assertRegex(log, r"b%s\[1\]: exchanging -> done: http_status, status 500, "
                              r"[\d.]+ ms: upstream answered 500 Internal Server Error" % bid)

        # the batch's own states, in order, after both items are done
        done_at = max(mine.index(l) for l in mine if "-> done" in l)
        batch_steps = [l.split(": ", 3)[3] for l in mine
                       if re.match(r"fanoutd: debug: b%s: \w+ -> \w+$" % bid, l)]
        self.assertEqual(batch_steps, ["running -> finishing", "finishing -> answering"])
        self.assertGreater(mine.index("fanoutd: debug: b%s: running -> finishing" % bid),
                           done_at)

        # the connections: made busy, kept alive after the exchange
        self.assertRegex(log, r"127\.0\.0\.1:%d c\d+: new connection" % self.up.port)
        self.assertRegex(log, r"127\.0\.0\.1:%d c\d+: busy -> idle: kept alive" % self.up.port)


class Quiet(harness.TestCase):
    def test_no_debug_lines_without_v(self):
        status, _ = self.fd.batch([self.up.url("/json"), self.up.url("/status/500")])
        self.assertEqual(status, 502)
        self.assertNotIn("debug:", self.fd.read_log())


if __name__ == "__main__":
    harness.main()
