// The kit's example plugin (the same one in every language): RCPT refuses
// recipients whose local part starts with `trap`, DATA counts messages in
// the plugin's kv store and stamps each with `X-Kit: js; messages=N`.
// Made with `ferrymail plugin new example --lang js --hooks rcpt,data`,
// then this file replaced plugin.js.

import { CONTINUE, dataResult, kvIncr, reject } from './ferrymail.js';

export const rcpt = {
  onRcpt(session, envelope, rcpt) {
    if (rcpt.toLowerCase().startsWith('trap')) {
      return reject(550, '5.7.1', 'No spamtraps here');
    }
    // "No opinion": the next plugin in the chain (e.g. `local`) decides.
    return CONTINUE;
  },
};

export const data = {
  onData(session, envelope, message) {
    // A kv failure (not granted, store slow) must not refuse mail: stamp "?".
    const count = kvIncr('messages');
    return dataResult(CONTINUE, { 'X-Kit': `js; messages=${count === undefined ? '?' : count}` });
  },
};
