"""Example plugin in Python (componentize-py): a word filter on DATA.

Refuses a message whose Subject or first 64 KiB of text contains one of
the configured words, counts refusals in the plugin's kv store, and stamps
accepted mail with a header. Built by ../build-python.sh against the world
`ferrymail:plugin/data-filter` (it exports only the `data` hook).

Config: words = ["viagra", ...] (case-insensitive), header = "X-Spamwords".
"""

import json

from wit_world import exports
from wit_world.imports import host, kv
from wit_world.imports.types import (
    DataResult, Envelope, Header, Message, Reply, Session,
    Verdict_Continue, Verdict_Reject,
)

SCAN_BYTES = 64 * 1024


def _config():
    try:
        cfg = json.loads(host.config())
    except ValueError:
        cfg = {}
    words = [w.lower() for w in cfg.get("words", ["viagra", "lottery winner"])]
    return words, cfg.get("header", "X-Spamwords")


class Data(exports.Data):
    def on_data(self, s: Session, env: Envelope, msg: Message) -> DataResult:
        words, header = _config()
        subject = " ".join(msg.header("subject")).lower()
        text = msg.read(0, SCAN_BYTES).decode("utf-8", "replace").lower()
        for word in words:
            if word in subject or word in text:
                try:
                    kv.incr("refused", 1, None)
                except Exception as e:  # a kv failure must not change the verdict
                    host.log(host.Level.WARN, f"kv: {e}")
                host.log(host.Level.INFO, f"refusing {env.mail_from}: contains {word!r}")
                reply = Reply(550, "5.7.1", f"Message refused: contains a forbidden word ({word})")
                return DataResult(Verdict_Reject(reply), [])
        return DataResult(Verdict_Continue(), [Header(header, f"clean; checked {len(words)} words")])
