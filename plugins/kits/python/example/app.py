"""The kit's example plugin (the same one in every language): RCPT refuses
recipients whose local part starts with `trap`, DATA counts messages in the
plugin's kv store and stamps each with `X-Kit: python; messages=N`.
Made with `ferrymail plugin new example --lang python --hooks rcpt,data`,
then this file replaced app.py.
"""

import ferrymail_plugin as fm
from wit_world import exports
from wit_world.imports.types import DataResult, Envelope, Message, Session, Verdict


class Rcpt(exports.Rcpt):
    def on_rcpt(self, s: Session, env: Envelope, rcpt: str) -> Verdict:
        if rcpt.lower().startswith("trap"):
            return fm.reject(550, "5.7.1", "No spamtraps here")
        # "No opinion": the next plugin in the chain (e.g. `local`) decides.
        return fm.CONTINUE


class Data(exports.Data):
    def on_data(self, s: Session, env: Envelope, msg: Message) -> DataResult:
        # A kv failure (not granted, store slow) must not refuse mail: stamp "?".
        count = fm.kv_incr("messages")
        return fm.data_result(fm.CONTINUE, {"X-Kit": f"python; messages={'?' if count is None else count}"})
